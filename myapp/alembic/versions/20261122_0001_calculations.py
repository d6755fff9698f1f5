"""calculations

Revision ID: 0001
Revises:
Create Date: 2026-11-22

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'calculations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('operation', sa.String(length=32), nullable=False),
        sa.Column('operands', sa.JSON(), nullable=False),
        sa.Column('result', sa.Float(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_calculations')),
    )


def downgrade():
    op.drop_table('calculations')
