"""jobs: idempotency keys scoped by client, kept as a digest

An Idempotency-Key was kept as sent, global to the app.  The table now
keeps sha256 of the client's scope and the key (see
``myapp.jobs.actions.stored_idempotency_key``); the keys already there were
all sent by anonymous clients, and are rewritten so that a retry across
the upgrade still finds its job.  The column itself does not change.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22

"""
import hashlib
import json

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

jobs = sa.table('jobs', sa.column('id', sa.String),
                sa.column('idempotency_key', sa.String))


def anonymous_digest(key):
    # As stored_idempotency_key(key, None) computes it, copied: a
    # migration must not change when the app's code does.
    return hashlib.sha256(json.dumps(['anonymous', key]).encode()).hexdigest()


def upgrade():
    connection = op.get_bind()
    keyed = connection.execute(
        sa.select(jobs.c.id, jobs.c.idempotency_key)
        .where(jobs.c.idempotency_key.is_not(None))).all()
    for job_id, key in keyed:
        connection.execute(jobs.update().where(jobs.c.id == job_id)
                           .values(idempotency_key=anonymous_digest(key)))


def downgrade():
    # A digest cannot give its key back: the keys are forgotten (a retry
    # then starts a second job, as without a key).
    op.execute(jobs.update().values(idempotency_key=None))
