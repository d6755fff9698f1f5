"""The outbox: jobs recorded but not yet accepted by the broker.

A job's row commits with the transaction that asked for it, and its message
leaves after that commit.  If the broker cannot be reached then, the row
stays with ``sent_at`` NULL, and :func:`send_unsent` (the
``myapp.jobs.tasks.send_unsent`` task: at worker start, and periodically)
sends it again with the same id, arguments and options.

Each unsent job is sent by one sweeper at a time: its row is locked
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite, which has no row locks,
lets one writer at a time in), and ``sent_at`` is written only once the
broker has accepted the message.  Should a message still go twice (a
sweeper that dies between the send and its commit), the second delivery
does not run: starting a job is a compare-and-set (:func:`.lifecycle.start`).
"""
import datetime
import logging

from celery.exceptions import NotRegistered
from sqlalchemy import select, text

from ..celery_integration import PyramidTask, celery_app
from ..models.job import PENDING, Job
from ..models.types import utcnow
from . import lifecycle
from .send_options import options_to_send

log = logging.getLogger(__name__)

#: A job younger than this may still be on its way from its after-commit
#: send (kombu retries a failing publish for a while): leave it to that.
GRACE_SECONDS = 30
BATCH_SIZE = 100

def send_unsent(dbsession, older_than_seconds=GRACE_SECONDS,
                limit=BATCH_SIZE):
    """Send the unsent jobs older than ``older_than_seconds``.

    Returns how many were sent.  Stops at the first failure: the broker is
    still down, and the rest wait for the next sweep.
    """
    sent = 0
    for job in lock_unsent(dbsession, older_than_seconds, limit):
        task = celery_app.tasks.get(job.task_name)
        if not isinstance(task, PyramidTask):
            # Its code is gone (renamed in a deploy): it can never run.
            lifecycle.fail(dbsession, job.id, NotRegistered(job.task_name))
            continue
        try:
            publish(task, job)
        except Exception as exc:
            log.warning('outbox: job %s (%s) still not sent: %s: %s',
                        job.id, job.task_name, type(exc).__name__, exc)
            break
        job.sent_at = utcnow()
        sent += 1
    return sent


def lock_unsent(dbsession, older_than_seconds, limit):
    if dbsession.get_bind().dialect.name == 'sqlite':
        # FOR UPDATE means nothing to SQLite; a write takes its one write
        # lock (even if it changes no row), so sweepers take turns.
        dbsession.execute(text('UPDATE jobs SET sent_at = NULL WHERE 0'))
    cutoff = utcnow() - datetime.timedelta(seconds=older_than_seconds)
    return dbsession.scalars(
        select(Job)
        .where(Job.sent_at.is_(None), Job.state == PENDING,
               Job.created_at < cutoff)
        .order_by(Job.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)).all()


def publish(task, job):
    # The sweeper holds the row's lock and records sent_at itself: a
    # TaskSent subscriber, in a transaction of its own, would wait for it.
    task.publish(job.args, job.kwargs, job.id, announce=False,
                 **options_to_send(job.options))
