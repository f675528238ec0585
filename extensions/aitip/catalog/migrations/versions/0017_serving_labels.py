"""serving: labelled rows and correct predictions in the metric series (accuracy from feedback)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 21:45:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('serving_metric_points', schema=None) as batch_op:
        batch_op.add_column(sa.Column('labelled', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('correct', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('serving_metric_points', schema=None) as batch_op:
        batch_op.drop_column('correct')
        batch_op.drop_column('labelled')
