"""A job's state transitions, each one statement on its row.

Workers, the web app and the sweeper change the same rows at once, so every
transition that could race is a compare-and-set: an ``UPDATE ... WHERE``
that names the states it may leave, and whose row count says whether it
happened.  A job that is not recorded (``Task.apply()`` in tests, a message
sent before the jobs table existed) is left alone: every function tolerates
an unknown id, and only :func:`start` records a job that a worker runs.
"""
import sqlalchemy.exc
from sqlalchemy import func, literal, select, update

from ..celery_integration import Origin

from ..models.job import (FAILURE, FINISHED, PENDING, PROGRESS, RETRY,
                          REVOKED, RUNNING, STARTED, SUCCESS, WAITING, Job)
from ..models.types import UTCDateTime, utcnow
from .send_options import options_to_store
from .values import error_type, head, jsonable, tail

def enqueue(dbsession, job_id, task_name, args, kwargs, options, origin):
    """Record a job about to be sent; ``sent_at`` stays NULL until it is.

    ``origin`` is an :class:`~myapp.celery_integration.Origin`.
    """
    now = utcnow()
    parent_id = origin.parent_id
    job = Job(id=job_id, task_name=task_name, args=jsonable(list(args)),
              kwargs=jsonable(dict(kwargs)),
              options=options_to_store(options, now), state=PENDING,
              origin=head(str(origin), 255),
              parent_id=parent_id[:36] if parent_id else None,
              retries=0, created_at=now)
    dbsession.add(job)
    return job


def mark_sent(dbsession, job_id):
    changed(dbsession, update(Job)
            .where(Job.id == job_id, Job.sent_at.is_(None))
            .values(sent_at=utcnow()))


def start(dbsession, job_id, worker, retries, redelivered, unrecorded=None):
    """Claim the run for this delivery; return why not, or None to run.

    Only a job that is waiting may start, so a duplicate message runs
    nothing and a job revoked while queued never runs, on any broker.

    A job that no sender recorded (``celery call``, Flower's send-task, a
    client without this app) is recorded now, from ``unrecorded`` (its
    ``task_name``, ``args`` and ``kwargs``), so that every job a worker
    runs is in the history.
    """
    # Waiting, and not a stale copy of an attempt that already failed.
    startable = Job.state.in_(WAITING) & (Job.retries <= retries)
    # A task's own self.retry() sends the retry before TaskRetrying is
    # recorded; a later attempt is not a duplicate.
    startable |= Job.state.in_(RUNNING) & (Job.retries < retries)
    if redelivered:
        # The worker that had it died before acknowledging it (acks_late).
        startable |= Job.state.in_(RUNNING)
    claimed = changed(dbsession, update(Job)
                      .where(Job.id == job_id, startable)
                      .values(state=STARTED, started_at=utcnow(),
                              worker=worker, retries=retries))
    if claimed:
        return None
    state = state_of(dbsession, job_id)
    if state is not None:
        return f'the job is {state}'
    if unrecorded is not None and \
            not record_started(dbsession, job_id, worker, retries,
                               **unrecorded):
        # Another delivery of it recorded it first: claim it as usual.
        return start(dbsession, job_id, worker, retries, redelivered)
    return None


def record_started(dbsession, job_id, worker, retries, task_name, args,
                   kwargs):
    """Record a job that a worker starts and no sender recorded; False if
    it is recorded already."""
    now = utcnow()
    job = Job(id=job_id, task_name=task_name, args=jsonable(list(args)),
              kwargs=jsonable(dict(kwargs)), options={}, state=STARTED,
              origin=str(Origin.worker(worker)), retries=retries,
              created_at=now, sent_at=now, started_at=now, worker=worker)
    try:
        with dbsession.begin_nested():
            dbsession.add(job)
    except sqlalchemy.exc.IntegrityError:
        return False
    return True


def record_progress(dbsession, job_id, current, total, message):
    """Record progress; return True when the job was revoked (stop it)."""
    recorded = changed(dbsession, update(Job)
                       .where(Job.id == job_id, Job.state.in_(RUNNING))
                       .values(state=PROGRESS,
                               progress_current=number(current),
                               progress_total=number(total),
                               progress_message=head(message or '')))
    return not recorded and state_of(dbsession, job_id) == REVOKED


def retrying(dbsession, job_id, exc, retries):
    """It failed and will run again; keeps REVOKED (the retry is vetoed).

    ``exc`` is None when the task called ``self.retry()`` without one.
    """
    error = error_values(exc) if exc is not None else {}
    changed(dbsession, update(Job)
            .where(Job.id == job_id, Job.state.not_in(FINISHED),
                   Job.retries < retries)
            .values(state=RETRY, retries=retries, **error))


def succeed(dbsession, job_id, result):
    """It returned ``result``.

    Also over REVOKED: a job that finished before it noticed its revocation
    did its work, and says so.
    """
    changed(dbsession, update(Job).where(Job.id == job_id)
            .values(state=SUCCESS, result=jsonable(result),
                    finished_at=utcnow(), error_type=None,
                    error_message=None, error_traceback=None))


def fail(dbsession, job_id, exc, traceback=None):
    changed(dbsession, update(Job).where(Job.id == job_id)
            .values(state=FAILURE, finished_at=utcnow(),
                    **error_values(exc, traceback)))


def revoke(dbsession, job_id):
    """Revoke a job unless it has finished; return True if it is revoked."""
    changed(dbsession, update(Job)
            .where(Job.id == job_id, Job.state.not_in(FINISHED))
            .values(state=REVOKED, finished_at=utcnow()))
    return state_of(dbsession, job_id) == REVOKED


def revoked(dbsession, job_id):
    """A worker discarded or stopped it (the revocation took effect)."""
    changed(dbsession, update(Job)
            .where(Job.id == job_id, Job.state.not_in((SUCCESS, FAILURE)))
            .values(state=REVOKED, finished_at=func.coalesce(
                Job.finished_at, literal(utcnow(), UTCDateTime))))


# -- helpers -----------------------------------------------------------

def changed(dbsession, statement):
    """Run an UPDATE; True if it changed a row.

    Loaded Job objects are not synchronised (that would need RETURNING,
    after which SQLite reports no row count): refresh them if needed.
    """
    return dbsession.execute(
        statement.execution_options(synchronize_session=False)
    ).rowcount > 0


def state_of(dbsession, job_id):
    return dbsession.scalar(select(Job.state).where(Job.id == job_id))


def error_values(exc, traceback=None):
    return {'error_type': error_type(exc), 'error_message': head(exc),
            'error_traceback': tail(traceback)}


def number(value):
    return None if value is None else float(value)
