"""serving: answers awaiting their labels, kept across restarts

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 02:00:00
"""

from alembic import op
import sqlalchemy as sa

import aitip.catalog.base


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('serving_remembered_answers',
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('at', aitip.catalog.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('predicted', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['endpoint_id'], ['serving_endpoints.id'], name=op.f('fk_serving_remembered_answers_endpoint_id_serving_endpoints'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('endpoint_id', 'request_id', name=op.f('pk_serving_remembered_answers'))
    )
    with op.batch_alter_table('serving_remembered_answers', schema=None) as batch_op:
        batch_op.create_index('ix_serving_remembered_answers_endpoint_at', ['endpoint_id', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('serving_remembered_answers', schema=None) as batch_op:
        batch_op.drop_index('ix_serving_remembered_answers_endpoint_at')
    op.drop_table('serving_remembered_answers')
