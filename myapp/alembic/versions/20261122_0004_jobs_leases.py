"""jobs: a lease on each running job, lost runs, and a due time for held jobs

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('lease_expires_at', sa.DateTime(timezone=True)))
        batch.add_column(sa.Column('lost_runs', sa.Integer(),
                                   nullable=False, server_default='0'))
        batch.add_column(sa.Column('due_at', sa.DateTime(timezone=True)))
    op.create_index('ix_jobs_lease_expires_at', 'jobs', ['lease_expires_at'],
                    postgresql_where=sa.text('lease_expires_at IS NOT NULL'),
                    sqlite_where=sa.text('lease_expires_at IS NOT NULL'))


def downgrade():
    op.drop_index('ix_jobs_lease_expires_at', table_name='jobs')
    with op.batch_alter_table('jobs') as batch:
        batch.drop_column('due_at')
        batch.drop_column('lost_runs')
        batch.drop_column('lease_expires_at')
