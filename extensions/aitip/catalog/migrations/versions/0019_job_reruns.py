"""job reruns: the job whose notebook a job runs again, with changes

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 04:20:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rerun_of', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_jobs_rerun_of_jobs'), 'jobs', ['rerun_of'], ['id'],
                                    ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_jobs_rerun_of_jobs'), type_='foreignkey')
        batch_op.drop_column('rerun_of')
