"""jobs: index on (worker, created_at, id), for the list filtered by worker

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_jobs_worker_created_at_id', 'jobs',
                    ['worker', 'created_at', 'id'])


def downgrade():
    op.drop_index('ix_jobs_worker_created_at_id', table_name='jobs')
