"""simulations, their templates and policies, and the evaluations looked at

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 09:00:00.000000
"""

from alembic import op
import sqlalchemy as sa
import aitip.catalog.base


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('simulation_templates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('body', sa.JSON(), nullable=False),
    sa.Column('resolved', sa.JSON(), nullable=False),
    sa.Column('created_by', sa.String(length=255), nullable=False),
    sa.Column('created_at', aitip.catalog.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_simulation_templates_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_simulation_templates')),
    sa.UniqueConstraint('project_id', 'name', 'version', name=op.f('uq_simulation_templates_project_id_name_version'))
    )
    with op.batch_alter_table('simulation_templates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_simulation_templates_project_id'), ['project_id'], unique=False)

    op.create_table('simulation_policies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('model', sa.String(length=256), nullable=False),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('automatic', sa.Boolean(), nullable=False),
    sa.Column('updated_by', sa.String(length=255), nullable=False),
    sa.Column('created_at', aitip.catalog.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', aitip.catalog.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_simulation_policies_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_simulation_policies')),
    sa.UniqueConstraint('project_id', 'model', name=op.f('uq_simulation_policies_project_id_model'))
    )
    with op.batch_alter_table('simulation_policies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_simulation_policies_project_id'), ['project_id'], unique=False)

    op.create_table('simulations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('template_name', sa.String(length=64), nullable=False),
    sa.Column('template_version', sa.Integer(), nullable=False),
    sa.Column('template_source', sa.String(length=16), nullable=False),
    sa.Column('template', sa.JSON(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('model', sa.String(length=256), nullable=True),
    sa.Column('model_version', sa.Integer(), nullable=True),
    sa.Column('model_run_id', sa.String(length=64), nullable=True),
    sa.Column('endpoint', sa.JSON(), nullable=True),
    sa.Column('dataset', sa.String(length=100), nullable=True),
    sa.Column('dataset_version', sa.Integer(), nullable=True),
    sa.Column('dataset_md5', sa.String(length=64), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('notebook_sha256', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('trigger', sa.String(length=64), nullable=False),
    sa.Column('previous_id', sa.Integer(), nullable=True),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('verdict', sa.JSON(), nullable=True),
    sa.Column('error', sa.JSON(), nullable=True),
    sa.Column('report_path', sa.String(length=1024), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_by', sa.String(length=255), nullable=False),
    sa.Column('created_at', aitip.catalog.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', aitip.catalog.base.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("state IN ('queued', 'running', 'passed', 'failed', 'error')", name=op.f('ck_simulations_state')),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_simulations_job_id_jobs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['previous_id'], ['simulations.id'], name=op.f('fk_simulations_previous_id_simulations'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_simulations_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_simulations'))
    )
    with op.batch_alter_table('simulations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_simulations_job_id'), ['job_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_simulations_model'), ['model'], unique=False)
        batch_op.create_index(batch_op.f('ix_simulations_project_id'), ['project_id'], unique=False)

    op.create_table('simulation_checked_evaluations',
    sa.Column('evaluation_id', sa.Integer(), nullable=False),
    sa.Column('simulations', sa.Integer(), nullable=False),
    sa.Column('checked_at', aitip.catalog.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['evaluation_id'], ['evaluations.id'], name=op.f('fk_simulation_checked_evaluations_evaluation_id_evaluations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('evaluation_id', name=op.f('pk_simulation_checked_evaluations'))
    )


def downgrade() -> None:
    op.drop_table('simulation_checked_evaluations')
    with op.batch_alter_table('simulations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_simulations_project_id'))
        batch_op.drop_index(batch_op.f('ix_simulations_model'))
        batch_op.drop_index(batch_op.f('ix_simulations_job_id'))
    op.drop_table('simulations')
    with op.batch_alter_table('simulation_policies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_simulation_policies_project_id'))
    op.drop_table('simulation_policies')
    with op.batch_alter_table('simulation_templates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_simulation_templates_project_id'))
    op.drop_table('simulation_templates')
