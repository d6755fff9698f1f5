"""jobs: group_id, the group or chord a job belongs to

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('group_id', sa.String(length=36),
                                   nullable=True))
    # Only members of a group have one: a small index, which lists them.
    op.create_index('ix_jobs_group_id', 'jobs', ['group_id', 'created_at'],
                    postgresql_where=sa.text('group_id IS NOT NULL'),
                    sqlite_where=sa.text('group_id IS NOT NULL'))


def downgrade():
    op.drop_index('ix_jobs_group_id', table_name='jobs')
    with op.batch_alter_table('jobs') as batch:
        batch.drop_column('group_id')
