"""Housekeeping tasks of the jobs table; run them periodically from beat.

* ``myapp.jobs.tasks.send_unsent``: sends the jobs the broker did not
  accept (see :mod:`.outbox`) and those whose run was lost with its worker
  (:mod:`.leases`), or whose message was lost (:mod:`.lost_messages`).
  Each worker also does this every 10 s
  (:mod:`.sweeper`); this task is for a deployment with no worker running
  it, and for an operator in ``pshell``.
* ``myapp.jobs.tasks.purge_history``: deletes finished jobs older than a
  number of days.
"""
import datetime

from sqlalchemy import delete

from ..celery_integration import task
from ..models.job import FINISHED, Job
from ..models.types import utcnow
from . import lost_messages, outbox, sweeper


@task
def send_unsent(request, older_than_seconds: float = outbox.GRACE_SECONDS,
                limit: int = outbox.BATCH_SIZE):
    """Send again the jobs whose first send failed, whose run was lost, or
    whose message was lost; returns how many."""
    return sweeper.sweep(request.dbsession, older_than_seconds, limit,
                         lost_messages.resend_after(request.registry))


@task
def purge_history(request, older_than_days: int):
    """Delete the jobs that finished more than ``older_than_days`` ago."""
    if older_than_days < 0:
        raise ValueError(f'older_than_days={older_than_days}: must be >= 0')
    cutoff = utcnow() - datetime.timedelta(days=older_than_days)
    return request.dbsession.execute(
        delete(Job).where(Job.state.in_(FINISHED), Job.finished_at < cutoff)
    ).rowcount
