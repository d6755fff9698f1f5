"""jobs: retry_of, the job a retry started again

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('retry_of', sa.String(length=36),
                                   nullable=True))
    # Only retries have one: a small index, which finds a job's retries.
    op.create_index('ix_jobs_retry_of', 'jobs', ['retry_of'],
                    postgresql_where=sa.text('retry_of IS NOT NULL'),
                    sqlite_where=sa.text('retry_of IS NOT NULL'))


def downgrade():
    op.drop_index('ix_jobs_retry_of', table_name='jobs')
    with op.batch_alter_table('jobs') as batch:
        batch.drop_column('retry_of')
