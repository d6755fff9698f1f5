"""A worker describes itself in the ``workers`` table while it runs.

When it is ready, then every :data:`HEARTBEAT` (2 s) from a thread of
its main process, and once more when it stops: its pid, pool and
concurrency, the queues it consumes, the jobs it is running and how many
it has received, read from Celery's own worker state (what ``celery
inspect stats`` and Celery's heartbeat events report).  A row in the
database, unlike a broadcast that waits for replies, answers every web
process at once, the same on every broker, and outlives the worker: one
whose heartbeat stopped is shown as gone (:mod:`.roster`).
"""
import datetime
import logging
import os
import threading

import celery
from celery.worker import state as worker_state
from sqlalchemy import delete

from ..models import Worker
from ..models.types import utcnow

log = logging.getLogger(__name__)

#: How often a running worker writes its row, unless
#: ``workers.heartbeat_seconds`` in ``[app:main]`` says otherwise.
HEARTBEAT = datetime.timedelta(seconds=2)
HEARTBEAT_SETTING = 'workers.heartbeat_seconds'
#: Below this the writes would cost more than they tell.
MIN_HEARTBEAT_SECONDS = 0.2
#: Rows of workers silent for longer are deleted when a worker starts.
FORGET_AFTER = datetime.timedelta(days=7)

HEART = 'myapp.workers.heart'


def description(consumer):
    """What the worker is, from Celery's consumer (its main process)."""
    pool = consumer.pool
    return {
        'pid': os.getpid(),
        # celery.concurrency.prefork:TaskPool is "prefork", as -P says it.
        'pool': type(pool).__module__.rpartition('.')[2],
        'concurrency': concurrency_of(consumer),
        'queues': sorted(queue.name for queue in
                         getattr(consumer.task_consumer, 'queues', ())),
        'software': f'celery {celery.__version__}',
    }


def concurrency_of(consumer):
    """Its pool's processes or threads now (autoscaling changes it)."""
    pool = consumer.pool
    for value in (getattr(pool, 'num_processes', None),
                  getattr(pool, 'limit', None),
                  getattr(consumer.controller, 'concurrency', None)):
        if isinstance(value, int) and value > 0:
            return value
    return 1


def activity():
    """The jobs running now and the tasks received so far (a copy of the
    set first: the consumer changes it meanwhile)."""
    running = list(worker_state.active_requests)
    return {'active': sorted(request.id for request in running),
            'processed': worker_state.all_total_count[0]}


class Heart:
    """Writes the worker's row now, then every ``interval``, from a thread."""

    def __init__(self, session_factory, consumer, interval):
        self.session_factory = session_factory
        self.consumer = consumer
        self.hostname = consumer.hostname
        self.interval = interval.total_seconds()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True,
                                       name='myapp-worker-heartbeat')

    def start(self):
        self.thread.start()
        return self

    def run(self):
        started = True
        while True:
            try:
                self.beat(started)
                started = False
            except Exception:  # the database is away: the next beat
                log.exception('worker %s: heartbeat not recorded',
                              self.hostname)
            if self.stopped.wait(self.interval):
                return

    def beat(self, started=False):
        """Write the row; ``started``: this worker's first, which also
        forgets the workers silent for :data:`FORGET_AFTER`."""
        now = utcnow()
        values = {**description(self.consumer), **activity(),
                  'heartbeat_at': now}
        if started:
            values.update(started_at=now, stopped_at=None)
        with self.session_factory() as dbsession, dbsession.begin():
            if started:
                forget_silent_workers(dbsession, now)
            row = dbsession.get(Worker, self.hostname)
            if row is None:
                dbsession.add(Worker(hostname=self.hostname,
                                     **{'started_at': now, **values}))
                return
            for name, value in values.items():
                setattr(row, name, value)

    def stop(self):
        """The worker stops cleanly: say so, and beat no more."""
        self.stopped.set()
        with self.session_factory() as dbsession, dbsession.begin():
            row = dbsession.get(Worker, self.hostname)
            if row is not None:
                row.active = []
                row.heartbeat_at = row.stopped_at = utcnow()


def forget_silent_workers(dbsession, now):
    dbsession.execute(delete(Worker).where(
        Worker.heartbeat_at < now - FORGET_AFTER))


def heartbeat(registry):
    """How often a worker writes its row (see :data:`HEARTBEAT`)."""
    return registry.get(HEARTBEAT_SETTING, HEARTBEAT)


def on_worker_ready(event):
    if event.worker is None:
        return
    registry = event.registry
    registry[HEART] = Heart(registry['dbsession_factory'], event.worker,
                            heartbeat(registry)).start()


def on_worker_stopping(event):
    heart = event.registry.get(HEART)
    if heart is not None and heart.hostname == event.hostname:
        heart.stop()
