"""dataset registrations in the background

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 23:30:00.000000
"""

from alembic import op
import sqlalchemy as sa
import aitip.catalog.base


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dataset_registrations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('dataset', sa.String(length=100), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('step', sa.String(length=16), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('bytes', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=True),
    sa.Column('error', sa.JSON(), nullable=True),
    sa.Column('created_by', sa.String(length=255), nullable=False),
    sa.Column('created_at', aitip.catalog.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', aitip.catalog.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('callback_url', sa.String(length=2048), nullable=True),
    sa.Column('callback_secret', sa.String(length=256), nullable=True),
    sa.CheckConstraint("state IN ('working', 'registered', 'rejected', 'failed')", name=op.f('ck_dataset_registrations_state')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_dataset_registrations_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dataset_registrations'))
    )
    with op.batch_alter_table('dataset_registrations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dataset_registrations_project_id'), ['project_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('dataset_registrations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dataset_registrations_project_id'))
    op.drop_table('dataset_registrations')
