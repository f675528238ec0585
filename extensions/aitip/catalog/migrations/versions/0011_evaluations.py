"""evaluations, their policies, and the training jobs looked at for new versions

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 03:00:00.000000
"""

from alembic import op
import sqlalchemy as sa
import aitip.catalog.base


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('evaluation_policies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('model', sa.String(length=256), nullable=False),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('automatic', sa.Boolean(), nullable=False),
    sa.Column('updated_by', sa.String(length=255), nullable=False),
    sa.Column('created_at', aitip.catalog.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', aitip.catalog.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_evaluation_policies_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evaluation_policies')),
    sa.UniqueConstraint('project_id', 'model', name=op.f('uq_evaluation_policies_project_id_model'))
    )
    with op.batch_alter_table('evaluation_policies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evaluation_policies_project_id'), ['project_id'], unique=False)

    op.create_table('evaluations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('model', sa.String(length=256), nullable=False),
    sa.Column('model_version', sa.Integer(), nullable=False),
    sa.Column('model_run_id', sa.String(length=64), nullable=True),
    sa.Column('baseline_version', sa.Integer(), nullable=True),
    sa.Column('dataset', sa.String(length=100), nullable=False),
    sa.Column('dataset_version', sa.Integer(), nullable=False),
    sa.Column('dataset_md5', sa.String(length=64), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('notebook_sha256', sa.String(length=64), nullable=False),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('trigger', sa.String(length=64), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=True),
    sa.Column('baseline_metrics', sa.JSON(), nullable=True),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('verdict', sa.JSON(), nullable=True),
    sa.Column('error', sa.JSON(), nullable=True),
    sa.Column('warnings', sa.JSON(), nullable=False),
    sa.Column('report_path', sa.String(length=1024), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_by', sa.String(length=255), nullable=False),
    sa.Column('created_at', aitip.catalog.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', aitip.catalog.base.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("state IN ('queued', 'running', 'passed', 'failed', 'error')", name=op.f('ck_evaluations_state')),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_evaluations_job_id_jobs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_evaluations_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evaluations'))
    )
    with op.batch_alter_table('evaluations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evaluations_job_id'), ['job_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_evaluations_project_id'), ['project_id'], unique=False)

    op.create_table('evaluation_checked_jobs',
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('evaluations', sa.Integer(), nullable=False),
    sa.Column('checked_at', aitip.catalog.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_evaluation_checked_jobs_job_id_jobs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('job_id', name=op.f('pk_evaluation_checked_jobs'))
    )


def downgrade() -> None:
    op.drop_table('evaluation_checked_jobs')
    with op.batch_alter_table('evaluations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evaluations_project_id'))
        batch_op.drop_index(batch_op.f('ix_evaluations_job_id'))
    op.drop_table('evaluations')
    with op.batch_alter_table('evaluation_policies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evaluation_policies_project_id'))
    op.drop_table('evaluation_policies')
