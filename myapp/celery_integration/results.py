"""Celery's database result backend, with ``date_done`` stored in UTC.

Celery sets ``date_done`` to ``app.now()``, an aware time in the app's
``timezone``, and its column has no time zone: SQLite kept the local wall
time (02:44 for 17:44 UTC in Asia/Tokyo) and PostgreSQL converts by its
session's zone.  Stored here in UTC, as every other time of the app.
Installed by ``configure_celery`` for ``db+...`` result backends, with
SQLAlchemy's mapper events on Celery's result models.
"""
from datetime import timezone

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
