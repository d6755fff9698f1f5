"""The workers this app has seen, as each last described itself.

A worker writes its own row while it runs (:mod:`myapp.workers.heartbeat`):
when it is ready, then every few seconds, and once more when it stops.
So the console lists a worker that died (SIGKILL, a lost machine) as
gone, from the age of its last heartbeat, instead of forgetting it, and
every web process agrees on what it shows, whatever the broker.
"""
from sqlalchemy import JSON, Column, Integer, String

from .meta import Base
from .types import UTCDateTime, utcnow


class Worker(Base):
    __tablename__ = 'workers'

    #: As Celery names it (``celery@host``): the ``worker`` of its jobs.
    hostname = Column(String(255), primary_key=True)
    pid = Column(Integer, nullable=False)
    #: Celery's pool class (``prefork``, ``threads``, ``solo``...).
    pool = Column(String(64), nullable=False)
    concurrency = Column(Integer, nullable=False)
    #: The queues it consumes.
    queues = Column(JSON, nullable=False, default=list)
    #: The ids of the jobs it was running at its last heartbeat.
    active = Column(JSON, nullable=False, default=list)
    #: Tasks it has received since it started (Celery's ``total``).
    processed = Column(Integer, nullable=False, default=0)
    software = Column(String(64), nullable=False, default='')
    started_at = Column(UTCDateTime, nullable=False, default=utcnow)
    heartbeat_at = Column(UTCDateTime, nullable=False, default=utcnow)
    #: Set when it stopped cleanly (a warm or cold shutdown).
    stopped_at = Column(UTCDateTime)
