"""Periodic jobs, kept in the app database so they can change while beat
runs, and the lease that lets one beat of many send them.

A periodic job is defined as a ``[celerybeat:NAME]`` section is (``task``,
``type``, ``schedule`` as JSON, ``args``, ``kwargs``, ``options``), plus a
time zone and whether it is enabled.  ``source`` says who owns the
definition: ``ini`` rows are synchronised from the ini when beat starts
(only ``enabled`` changes at run time), ``api`` rows are made and changed
over HTTP, on the pages, or in SQL.
"""
from sqlalchemy import JSON, Boolean, Column, Integer, String

from .meta import Base
from .types import UTCDateTime, utcnow

#: Who owns a periodic job's definition.
SOURCE_INI = 'ini'
SOURCE_API = 'api'


class PeriodicJob(Base):
    __tablename__ = 'periodic_jobs'

    name = Column(String(200), primary_key=True)
    task = Column(String(255), nullable=False)
    args = Column(JSON, nullable=False, default=list)
    kwargs = Column(JSON, nullable=False, default=dict)
    #: ``apply_async`` options each run is sent with (queue, priority...).
    options = Column(JSON, nullable=False, default=dict)
    #: ``integer``, ``timedelta``, ``crontab``, ``solar`` or ``clocked``,
    #: and its JSON, as in a ``[celerybeat:NAME]`` section.
    type = Column(String(16), nullable=False)
    schedule = Column(JSON, nullable=False)
    #: The zone its crontab or clocked time is read in; NULL: Celery's.
    timezone = Column(String(64))
    enabled = Column(Boolean, nullable=False, default=True)
    source = Column(String(8), nullable=False, default=SOURCE_API)
    #: An ini row's section as last synchronised (its keys and text), so
    #: that a restart changes only what the ini changed.
    ini_section = Column(JSON)

    #: When beat last sent it (NULL: never; it then counts from
    #: ``created_at``), and how many times.  Beat advances both in the
    #: transaction that records the run, so a tick is sent once.
    last_run_at = Column(UTCDateTime)
    total_runs = Column(Integer, nullable=False, default=0)
    created_at = Column(UTCDateTime, nullable=False, default=utcnow)
    changed_at = Column(UTCDateTime, nullable=False, default=utcnow,
                        onupdate=utcnow)

    def __repr__(self):
        return f'<PeriodicJob {self.name} {self.type} {self.task}>'


class BeatLease(Base):
    """Which beat process sends the periodic jobs, until when.

    One row (``name`` is ``beat``).  The holder extends it on every tick;
    a standby takes it once it has expired (:mod:`myapp.schedules.lease`).
    """
    __tablename__ = 'beat_leases'

    name = Column(String(64), primary_key=True)
    #: ``pid@host`` and a random part, unique to one beat's life.
    holder = Column(String(255), nullable=False)
    acquired_at = Column(UTCDateTime, nullable=False)
    expires_at = Column(UTCDateTime, nullable=False)
