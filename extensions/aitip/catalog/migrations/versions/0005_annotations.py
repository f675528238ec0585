"""annotations

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 03:54:55.186652
"""

from alembic import op
import sqlalchemy as sa
import aitip.catalog.base


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('annotation_tasks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('dataset_version_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('instructions', sa.Text(), nullable=False),
    sa.Column('labels', sa.JSON(), nullable=False),
    sa.Column('item_column', sa.String(length=255), nullable=True),
    sa.Column('overlap', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_by', sa.String(length=255), nullable=False),
    sa.Column('created_at', aitip.catalog.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('exported_version_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("state IN ('open', 'exported')", name=op.f('ck_annotation_tasks_state')),
    sa.ForeignKeyConstraint(['dataset_version_id'], ['dataset_versions.id'], name=op.f('fk_annotation_tasks_dataset_version_id_dataset_versions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['exported_version_id'], ['dataset_versions.id'], name=op.f('fk_annotation_tasks_exported_version_id_dataset_versions'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_annotation_tasks_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_annotation_tasks')),
    sa.UniqueConstraint('project_id', 'name', name=op.f('uq_annotation_tasks_project_id_name'))
    )
    with op.batch_alter_table('annotation_tasks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_annotation_tasks_project_id'), ['project_id'], unique=False)

    op.create_table('annotation_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=1024), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['annotation_tasks.id'], name=op.f('fk_annotation_items_task_id_annotation_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_annotation_items')),
    sa.UniqueConstraint('task_id', 'position', name=op.f('uq_annotation_items_task_id_position'))
    )
    with op.batch_alter_table('annotation_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_annotation_items_task_id'), ['task_id'], unique=False)

    op.create_table('annotation_assignments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('annotator', sa.String(length=255), nullable=False),
    sa.Column('label', sa.String(length=255), nullable=True),
    sa.Column('labelled_at', aitip.catalog.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('review', sa.String(length=16), nullable=False),
    sa.Column('reviewed_by', sa.String(length=255), nullable=True),
    sa.Column('reviewed_at', aitip.catalog.base.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("review IN ('pending', 'accepted', 'rejected')", name=op.f('ck_annotation_assignments_review')),
    sa.ForeignKeyConstraint(['item_id'], ['annotation_items.id'], name=op.f('fk_annotation_assignments_item_id_annotation_items'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['task_id'], ['annotation_tasks.id'], name=op.f('fk_annotation_assignments_task_id_annotation_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_annotation_assignments')),
    sa.UniqueConstraint('item_id', 'annotator', name=op.f('uq_annotation_assignments_item_id_annotator'))
    )
    with op.batch_alter_table('annotation_assignments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_annotation_assignments_annotator'), ['annotator'], unique=False)
        batch_op.create_index(batch_op.f('ix_annotation_assignments_item_id'), ['item_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_annotation_assignments_task_id'), ['task_id'], unique=False)

    with op.batch_alter_table('dataset_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('derived_from_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_dataset_versions_derived_from_id_dataset_versions'), 'dataset_versions', ['derived_from_id'], ['id'], ondelete='SET NULL')



def downgrade() -> None:
    with op.batch_alter_table('dataset_versions', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_dataset_versions_derived_from_id_dataset_versions'), type_='foreignkey')
        batch_op.drop_column('derived_from_id')

    with op.batch_alter_table('annotation_assignments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_annotation_assignments_task_id'))
        batch_op.drop_index(batch_op.f('ix_annotation_assignments_item_id'))
        batch_op.drop_index(batch_op.f('ix_annotation_assignments_annotator'))

    op.drop_table('annotation_assignments')
    with op.batch_alter_table('annotation_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_annotation_items_task_id'))

    op.drop_table('annotation_items')
    with op.batch_alter_table('annotation_tasks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_annotation_tasks_project_id'))

    op.drop_table('annotation_tasks')
