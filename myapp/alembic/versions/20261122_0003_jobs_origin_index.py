"""jobs: index on origin, for the last run of each periodic job

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_jobs_origin_created_at', 'jobs',
                    ['origin', 'created_at'])


def downgrade():
    op.drop_index('ix_jobs_origin_created_at', table_name='jobs')
