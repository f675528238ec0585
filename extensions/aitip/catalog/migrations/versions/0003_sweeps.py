"""sweeps

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 01:49:13.454705
"""

import aitip.catalog.base
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sweeps',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('owner', sa.String(length=255), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('strategy', sa.String(length=16), nullable=False),
    sa.Column('space', sa.JSON(), nullable=False),
    sa.Column('parameters', sa.JSON(), nullable=False),
    sa.Column('trials', sa.Integer(), nullable=False),
    sa.Column('parallelism', sa.Integer(), nullable=False),
    sa.Column('objective', sa.String(length=250), nullable=False),
    sa.Column('direction', sa.String(length=8), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('template', sa.JSON(), nullable=False),
    sa.Column('created_trials', sa.Integer(), nullable=False),
    sa.Column('results', sa.JSON(), nullable=False),
    sa.Column('best_job_id', sa.Integer(), nullable=True),
    sa.Column('best_value', sa.Float(), nullable=True),
    sa.Column('best_parameters', sa.JSON(), nullable=True),
    sa.Column('mlflow_run_id', sa.String(length=64), nullable=True),
    sa.Column('cancel_requested', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('created_at', aitip.catalog.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', aitip.catalog.base.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("state IN ('running', 'succeeded', 'failed', 'cancelled')", name=op.f('ck_sweeps_state')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_sweeps_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sweeps'))
    )
    with op.batch_alter_table('sweeps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sweeps_project_id'), ['project_id'], unique=False)

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sweep_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('trial_index', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_jobs_sweep_id'), ['sweep_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_jobs_sweep_id_sweeps'), 'sweeps', ['sweep_id'], ['id'], ondelete='SET NULL')



def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_jobs_sweep_id_sweeps'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_jobs_sweep_id'))
        batch_op.drop_column('trial_index')
        batch_op.drop_column('sweep_id')

    with op.batch_alter_table('sweeps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sweeps_project_id'))

    op.drop_table('sweeps')
