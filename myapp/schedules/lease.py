"""One beat of many sends the periodic jobs: a lease row in the app
database.

Every beat process tries to hold the ``beat_leases`` row: the holder
extends it on every tick (about once a second); the others wait, and one
takes it once it has expired, so a standby takes over within
``lease_seconds`` and a tick of the time a beat dies.  Sending a tick is
done in a transaction that extends the lease too (:meth:`BeatLease.hold`),
so a beat that lost its lease while it was paused sends nothing: the
database decides, not the clocks of the machines.

Times are the beats' own clocks (UTC): machines that run beat keep them
within a second of each other (NTP), as any cluster does.
"""
import datetime
import os
import socket
import uuid

import sqlalchemy.exc
from sqlalchemy import case, or_, select, update

from ..models.schedule import BeatLease
from ..models.types import utcnow

LEASE_NAME = 'beat'
#: How long a lease lasts unless extended.  A standby takes over within
#: this (plus one tick) of the holder's death.
DEFAULT_LEASE_SECONDS = 6
MINIMUM_LEASE_SECONDS = 3


def lease_seconds(settings):
    """``schedules.lease_seconds`` of ``[app:main]`` (checked at start)."""
    return float(settings.get('schedules.lease_seconds',
                              DEFAULT_LEASE_SECONDS))


def this_process():
    """``pid@host`` and a random part: unique to one beat's life."""
    return f'{os.getpid()}@{socket.gethostname()}/{uuid.uuid4().hex[:8]}'


class Lease:
    """This process's claim to be the beat that sends."""

    def __init__(self, seconds=DEFAULT_LEASE_SECONDS, holder=None):
        self.seconds = seconds
        self.holder = holder or this_process()

    def hold(self, dbsession, now=None):
        """Take or extend the lease; True if this process holds it now.

        One statement: ours (extended), or expired (taken); a concurrent
        taker waits for the row and then finds it is not its to take.
        """
        now = now or utcnow()
        expires = now + datetime.timedelta(seconds=self.seconds)
        ours = BeatLease.holder == self.holder
        taken = dbsession.execute(
            update(BeatLease)
            .where(BeatLease.name == LEASE_NAME,
                   or_(ours, BeatLease.expires_at < now))
            .values(holder=self.holder, expires_at=expires,
                    acquired_at=case((ours, BeatLease.acquired_at),
                                     else_=now))
            .execution_options(synchronize_session=False)).rowcount
        if taken:
            return True
        if dbsession.get(BeatLease, LEASE_NAME) is not None:
            return False
        return self.create(dbsession, now, expires)

    def create(self, dbsession, now, expires):
        """The first beat ever: insert the row (another may race us)."""
        try:
            with dbsession.begin_nested():
                dbsession.add(BeatLease(name=LEASE_NAME, holder=self.holder,
                                        acquired_at=now, expires_at=expires))
        except sqlalchemy.exc.IntegrityError:
            return False
        return True

    def release(self, dbsession):
        """Let a standby take over at once (a clean stop)."""
        dbsession.execute(
            update(BeatLease)
            .where(BeatLease.name == LEASE_NAME,
                   BeatLease.holder == self.holder)
            .values(expires_at=utcnow())
            .execution_options(synchronize_session=False))


def current_holder(dbsession):
    """Who holds the lease, until when, in words (None: no one ever)."""
    lease = dbsession.scalar(select(BeatLease)
                             .where(BeatLease.name == LEASE_NAME))
    if lease is None:
        return None
    until = lease.expires_at.isoformat(timespec='seconds')
    return f'{lease.holder} (lease until {until})'

