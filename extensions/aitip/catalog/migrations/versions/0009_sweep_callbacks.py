"""sweep callbacks

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 21:20:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sweeps') as batch:
        batch.add_column(sa.Column('callback_url', sa.String(length=2048), nullable=True))
        batch.add_column(sa.Column('callback_secret', sa.String(length=256), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('sweeps') as batch:
        batch.drop_column('callback_secret')
        batch.drop_column('callback_url')
