"""The workers seen, whether each still beats, and the jobs left running
on one that does not (stuck jobs)."""
from sqlalchemy import select

from ..models import Job, Worker
from ..models.job import RUNNING
from ..models.types import utcnow
from .heartbeat import heartbeat

ONLINE, GONE, STOPPED = 'online', 'gone', 'stopped'
#: Heartbeats a worker may miss before it is shown as gone (a busy
#: database or a long pause of its process should not make it look dead).
MISSED_HEARTBEATS = 5


def status_of(worker, registry, now):
    """online, stopped (it said so) or gone (silent for too long)."""
    if worker.stopped_at is not None:
        return STOPPED
    if now - worker.heartbeat_at > heartbeat(registry) * MISSED_HEARTBEATS:
        return GONE
    return ONLINE


def workers_seen(dbsession, registry):
    """Every worker the table knows, with its status: online ones first,
    then the most recently heard from."""
    now = utcnow()
    workers = dbsession.scalars(select(Worker)).all()
    seen = [(worker, status_of(worker, registry, now)) for worker in workers]
    seen.sort(key=lambda pair: (pair[1] != ONLINE, -pair[0].heartbeat_at
                                .timestamp(), pair[0].hostname))
    return seen


def online_hostnames(seen):
    return sorted(worker.hostname for worker, status in seen
                  if status == ONLINE)


def stuck_jobs_query(online, limit):
    """Jobs a worker started that is not online now, newest first (by the
    index on state): no heartbeat will ever finish them; the sweeper sends
    them again once their lease expires, unless an operator acts first."""
    stuck = Job.state.in_(RUNNING)
    if online:
        stuck &= Job.worker.is_(None) | Job.worker.not_in(online)
    return (select(Job).where(stuck)
            .order_by(Job.created_at.desc(), Job.id.desc()).limit(limit))
