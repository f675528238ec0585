"""jobs and job events

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 01:03:51.030355
"""

import aitip.catalog.base
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('owner', sa.String(length=255), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('notebook_name', sa.String(length=255), nullable=False),
    sa.Column('notebook_sha256', sa.String(length=64), nullable=False),
    sa.Column('parameters', sa.JSON(), nullable=False),
    sa.Column('kernel', sa.String(length=255), nullable=False),
    sa.Column('cpus', sa.Float(), nullable=False),
    sa.Column('gpus', sa.Integer(), nullable=False),
    sa.Column('memory_mb', sa.Integer(), nullable=True),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('timeout_seconds', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('code_version', sa.String(length=255), nullable=True),
    sa.Column('retry_of', sa.Integer(), nullable=True),
    sa.Column('cancel_requested', sa.Boolean(), nullable=False),
    sa.Column('lease_owner', sa.String(length=64), nullable=True),
    sa.Column('lease_expires_at', aitip.catalog.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('kernel_pid', sa.Integer(), nullable=True),
    sa.Column('kernel_host', sa.String(length=255), nullable=True),
    sa.Column('mlflow_run_id', sa.String(length=64), nullable=True),
    sa.Column('mlflow_experiment_id', sa.String(length=64), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('failed_cell', sa.JSON(), nullable=True),
    sa.Column('output_path', sa.String(length=1024), nullable=True),
    sa.Column('submitted_at', aitip.catalog.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', aitip.catalog.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('first_cell_at', aitip.catalog.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', aitip.catalog.base.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("state IN ('queued', 'starting', 'running', 'succeeded', 'failed', 'cancelled', 'timed_out')", name=op.f('ck_jobs_state')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_jobs_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['retry_of'], ['jobs.id'], name=op.f('fk_jobs_retry_of_jobs'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs'))
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_jobs_lease_expires_at'), ['lease_expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_jobs_owner'), ['owner'], unique=False)
        batch_op.create_index(batch_op.f('ix_jobs_project_id'), ['project_id'], unique=False)
        batch_op.create_index('ix_jobs_state_priority', ['state', 'priority'], unique=False)

    op.create_table('job_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('at', aitip.catalog.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_job_events_job_id_jobs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_events'))
    )
    with op.batch_alter_table('job_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_job_events_job_id'), ['job_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('job_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_job_events_job_id'))

    op.drop_table('job_events')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_state_priority')
        batch_op.drop_index(batch_op.f('ix_jobs_project_id'))
        batch_op.drop_index(batch_op.f('ix_jobs_owner'))
        batch_op.drop_index(batch_op.f('ix_jobs_lease_expires_at'))

    op.drop_table('jobs')
