"""periodic_jobs and beat_leases: schedules changed at run time, one beat
sending them across machines

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'periodic_jobs',
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('task', sa.String(length=255), nullable=False),
        sa.Column('args', sa.JSON(), nullable=False),
        sa.Column('kwargs', sa.JSON(), nullable=False),
        sa.Column('options', sa.JSON(), nullable=False),
        sa.Column('type', sa.String(length=16), nullable=False),
        sa.Column('schedule', sa.JSON(), nullable=False),
        sa.Column('timezone', sa.String(length=64), nullable=True),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('source', sa.String(length=8), nullable=False),
        sa.Column('ini_section', sa.JSON(), nullable=True),
        sa.Column('last_run_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('total_runs', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_periodic_jobs')),
    )
    op.create_table(
        'beat_leases',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('holder', sa.String(length=255), nullable=False),
        sa.Column('acquired_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_beat_leases')),
    )


def downgrade():
    op.drop_table('beat_leases')
    op.drop_table('periodic_jobs')
