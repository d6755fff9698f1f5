"""jobs: the history of every task run, and the outbox of unsent ones

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'jobs',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('task_name', sa.String(length=255), nullable=False),
        sa.Column('args', sa.JSON(), nullable=False),
        sa.Column('kwargs', sa.JSON(), nullable=False),
        sa.Column('options', sa.JSON(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('progress_current', sa.Float(), nullable=True),
        sa.Column('progress_total', sa.Float(), nullable=True),
        sa.Column('progress_message', sa.Text(), nullable=True),
        sa.Column('result', sa.JSON(), nullable=True),
        sa.Column('error_type', sa.String(length=255), nullable=True),
        sa.Column('error_message', sa.Text(), nullable=True),
        sa.Column('error_traceback', sa.Text(), nullable=True),
        sa.Column('origin', sa.String(length=255), nullable=False),
        sa.Column('parent_id', sa.String(length=36), nullable=True),
        sa.Column('worker', sa.String(length=255), nullable=True),
        sa.Column('retries', sa.Integer(), nullable=False),
        sa.Column('idempotency_key', sa.String(length=255), nullable=True),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs')),
        sa.UniqueConstraint('idempotency_key',
                            name=op.f('uq_jobs_idempotency_key')),
    )
    op.create_index('ix_jobs_created_at_id', 'jobs', ['created_at', 'id'])
    op.create_index('ix_jobs_task_name_created_at_id', 'jobs',
                    ['task_name', 'created_at', 'id'])
    op.create_index('ix_jobs_state_created_at_id', 'jobs',
                    ['state', 'created_at', 'id'])
    op.create_index('ix_jobs_finished_at', 'jobs', ['finished_at'])
    op.create_index('ix_jobs_unsent', 'jobs', ['created_at'],
                    postgresql_where=sa.text('sent_at IS NULL'),
                    sqlite_where=sa.text('sent_at IS NULL'))


def downgrade():
    op.drop_table('jobs')
