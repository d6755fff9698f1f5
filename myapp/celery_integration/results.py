"""Celery's result backends as the integration uses them.

* Whether a backend keeps a task's outcome where another process can read
  it later (:func:`keeps_results`, :func:`stored_success`): a run's
  success may then be recorded off its path, and recovered from there.
* The database result backend stores ``date_done`` in UTC.  Celery sets
  ``date_done`` to ``app.now()``, an aware time in the app's ``timezone``,
  and its column has no time zone: SQLite kept the local wall time (02:44
  for 17:44 UTC in Asia/Tokyo) and PostgreSQL converts by its session's
  zone.  Stored here in UTC, as every other time of the app.  Installed by
  ``configure_celery`` for ``db+...`` result backends, with SQLAlchemy's
  mapper events on Celery's result models.
"""
from datetime import timezone

from celery import states
from celery.backends.base import DisabledBackend
from celery.backends.rpc import RPCBackend
from sqlalchemy import event

EVENTS = ('before_insert', 'before_update')


def store_times_in_utc():
    """Listen on Celery's result models (once per process)."""
    # Imported here: only database backends load Celery's SQLAlchemy models.
    from celery.backends.database.models import Task, TaskSet

    for model in (Task, TaskSet):  # TaskExtended inherits from Task
        for name in EVENTS:
            if not event.contains(model, name, date_done_in_utc):
                event.listen(model, name, date_done_in_utc, propagate=True)


def date_done_in_utc(mapper, connection, target):
    done = target.date_done
    if done is not None and done.tzinfo is not None:
        target.date_done = done.astimezone(timezone.utc).replace(tzinfo=None)


def keeps_results(backend):
    """Does ``backend`` keep results by task id, readable by any process
    until they expire?  Not ``rpc://`` (a result is a message to the
    sender, consumed once) nor a disabled backend."""
    return not isinstance(backend, (DisabledBackend, RPCBackend))


def stored_success(backend, task_id):
    """``(result,)`` if ``backend`` holds a success for ``task_id``, else
    None (any other state, none yet, or a backend that keeps nothing)."""
    if not keeps_results(backend):
        return None
    meta = backend.get_task_meta(task_id, cache=False)
    if meta.get('status') != states.SUCCESS:
        return None
    return (meta.get('result'),)
