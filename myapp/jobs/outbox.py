"""The outbox: jobs recorded but not yet accepted by the broker.

A job's row commits with the transaction that asked for it, and its message
leaves after that commit.  If the broker cannot be reached then, the row
stays with ``sent_at`` NULL, and :func:`send_unsent` (the
``myapp.jobs.tasks.send_unsent`` task: at worker start, and periodically)
sends it again with the same id, arguments and options.

A job whose ETA (or countdown) is further off than :data:`HOLD_BEYOND` is
not handed to the broker at all: brokers hold such messages badly (Redis
gives them to another worker after its visibility timeout, and a Celery
worker keeps every ETA message it has read in memory).  It waits here,
unsent, with ``due_at``, and the sweeper sends it when it is that close.

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
from sqlalchemy import and_, or_, select, text

from ..celery_integration import PyramidTask, celery_app
from ..models.job import PENDING, Job
from ..models.types import utcnow
from . import lifecycle
from .send_options import due_time, options_to_send

log = logging.getLogger(__name__)

#: A job younger than this may still be on its way from its after-commit
#: send (kombu retries a failing publish for a while): leave it to that.
GRACE_SECONDS = 30
BATCH_SIZE = 100
#: A job due further off than this is held here, and sent when it is this
#: close (the sweeper runs at least every 10 s).
HOLD_BEYOND = datetime.timedelta(seconds=20)


def hold_if_far(values):
    """Keep a job due far off here: set ``due_at`` in its row's values;
    True if it is held."""
    due = due_time(values['options'])
    if due is None or due - utcnow() <= HOLD_BEYOND:
        return False
    values['due_at'] = due
    return True

def send_unsent(dbsession, older_than_seconds=GRACE_SECONDS,
                limit=BATCH_SIZE, ids=None):
    """Send the unsent jobs older than ``older_than_seconds`` (only those
    of ``ids``, if given).

    Returns how many were sent.  Stops at the first failure: the broker is
    still down, and the rest wait for the next sweep.
    """
    sent = 0
    for job in lock_unsent(dbsession, older_than_seconds, limit, ids):
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


def lock_unsent(dbsession, older_than_seconds, limit, ids=None):
    if dbsession.get_bind().dialect.name == 'sqlite':
        # FOR UPDATE means nothing to SQLite; a write takes its one write
        # lock (even if it changes no row), so sweepers take turns.
        dbsession.execute(text('UPDATE jobs SET sent_at = NULL WHERE 0'))
    now = utcnow()
    cutoff = now - datetime.timedelta(seconds=older_than_seconds)
    ready = or_(and_(Job.due_at.is_(None), Job.created_at <= cutoff),
                Job.due_at <= now + HOLD_BEYOND)
    unsent = [Job.sent_at.is_(None), Job.state == PENDING, ready]
    if ids is not None:
        unsent.append(Job.id.in_(ids))
    return dbsession.scalars(
        select(Job)
        .where(*unsent)
        .order_by(Job.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)).all()


def publish(task, job):
    # The sweeper holds the row's lock and records sent_at itself: a
    # TaskSent subscriber, in a transaction of its own, would wait for it.
    task.publish(job.args, job.kwargs, job.id, announce=False,
                 **options_to_send(job.options))
