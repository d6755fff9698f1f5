"""Housekeeping tasks of the jobs table; run them periodically from beat.

* ``myapp.jobs.tasks.send_unsent``: sends the jobs the broker did not
  accept (see :mod:`.outbox`).  Also sent each time a worker starts.
* ``myapp.jobs.tasks.purge_history``: deletes finished jobs older than a
  number of days.
"""
import datetime

from sqlalchemy import delete

from ..celery_integration import task
from ..models.job import FINISHED, Job
from ..models.types import utcnow
from . import outbox


@task
def send_unsent(request, older_than_seconds: float = outbox.GRACE_SECONDS,
                limit: int = outbox.BATCH_SIZE):
    """Send again the jobs whose first send failed; returns how many."""
    return outbox.send_unsent(request.dbsession, older_than_seconds, limit)


@task
def purge_history(request, older_than_days: int):
    """Delete the jobs that finished more than ``older_than_days`` ago."""
    if older_than_days < 0:
        raise ValueError(f'older_than_days={older_than_days}: must be >= 0')
    cutoff = utcnow() - datetime.timedelta(days=older_than_days)
    return request.dbsession.execute(
        delete(Job).where(Job.state.in_(FINISHED), Job.finished_at < cutoff)
    ).rowcount
