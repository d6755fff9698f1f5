"""``GET /metrics``: the jobs, the outbox, the periodic jobs, the queues and
the workers, in Prometheus's text format (prometheus_client).

Every family is defined in :data:`FAMILIES`, with its help text.  A scrape
never reads the whole ``jobs`` table, however long the history:

* **finished jobs** (``myapp_jobs_finished_total``, the duration and
  queue-wait histograms) are folded in incrementally: each scrape reads
  only the rows finished since the last one it read, by ``(finished_at,
  id)`` on the ``ix_jobs_finished_at`` index, in batches of
  :data:`BATCH_ROWS` and at most :data:`MAX_ROWS_PER_SCRAPE` (a backlog is
  read over the next scrapes), and adds them to counts kept in this
  process.  They count from this process's first scrape (minus
  :data:`SETTLE`), as Prometheus counters do from a process's start; a
  restart is a counter reset, which ``rate()`` and ``increase()`` expect;
* **jobs not finished** (``myapp_jobs``) are counted at each scrape, with
  a ``GROUP BY`` restricted to those states: the ``(state, created_at,
  id)`` index finds them, so it costs what there is to count, not the
  history (:func:`live_jobs` says how SQLite is kept on that index);
* **the outbox** reads only unsent rows (the ``ix_jobs_unsent`` partial
  index, or the state index), and the periodic jobs their own small table;
* **live workers** are read from the small ``workers`` table, where each
  worker writes its heartbeat (:mod:`myapp.workers`);
* **queue depths** come from the broker (:mod:`myapp.workers.queues`),
  in a thread waited for at most :data:`BROKER_SECONDS` (as ``/health``
  bounds its checks), so a broker that hangs leaves that family out of a
  scrape and says so in ``myapp_metrics_source_up``, rather than hanging
  it.

Each app has its own ``CollectorRegistry`` (:func:`prometheus_registry`),
made when ``myapp.monitoring`` is included: nothing is registered in
prometheus_client's global registry, and importing this module sets
nothing up.
"""
import bisect
import collections
import concurrent.futures
import datetime
import itertools
import logging
import threading
import time
from typing import NamedTuple

from prometheus_client import CollectorRegistry
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily)
from prometheus_client.exposition import choose_encoder
from prometheus_client.utils import floatToGoString
from sqlalchemy import case, func, select, text

from ..celery_integration import PyramidTask, celery_app
from ..celery_integration.errors import mask_secrets
from ..models.job import FINISHED, PENDING, RUNNING, WAITING, Job
from ..models.schedule import PeriodicJob
from ..models.types import utcnow
from ..models.worker import Worker
from ..workers import queues
from ..workers.roster import ONLINE, status_of

log = logging.getLogger(__name__)

#: Where the app's CollectorRegistry and the jobs' collector live in the
#: Pyramid registry.
PROMETHEUS_REGISTRY = 'myapp.monitoring.prometheus_registry'
JOBS_COLLECTOR = 'myapp.monitoring.jobs_collector'

#: The states of a job that has not finished: counted as they stand.
LIVE_STATES = WAITING + RUNNING

#: Finished jobs are read up to this long before the scrape: a run writes
#: its ``finished_at`` a moment before its transaction commits (and on its
#: own machine's clock), and a row that became visible only after the
#: watermark had passed its time would never be counted.  So the counters
#: are this late, and a row committed later than this after its
#: ``finished_at`` (or from a clock further off) is missed.
SETTLE = datetime.timedelta(seconds=5)
#: Finished rows read per statement, and at most per scrape: a scrape
#: stays short after a burst, and the next ones catch up.
BATCH_ROWS = 5_000
MAX_ROWS_PER_SCRAPE = 50_000
#: The longest a scrape waits for the broker (queues, workers).
BROKER_SECONDS = 3.0
#: The longest one database statement of a scrape may run (PostgreSQL).
DATABASE_SECONDS = 5.0

#: Upper bounds of the duration and queue-wait buckets, in seconds: from
#: a quick task to an hour-long one (Prometheus's default buckets stop at
#: 10 s).
SECONDS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
                   120, 300, 600, 1800, 3600)
#: Their ``le`` labels, as Prometheus writes them, and +Inf.
BUCKET_LABELS = (*map(floatToGoString, SECONDS_BUCKETS), '+Inf')


class Family(NamedTuple):
    kind: type
    help: str
    labels: tuple = ()


#: Every family of ``/metrics``, in the order it is shown.
FAMILIES = {
    'myapp_jobs_finished': Family(
        CounterMetricFamily,
        'Jobs that finished (SUCCESS, FAILURE or REVOKED), by task and '
        'state, counted from this process\'s first scrape (the counters '
        'run some seconds late, see myapp.monitoring.metrics.SETTLE).',
        ('task', 'state')),
    'myapp_job_duration_seconds': Family(
        HistogramMetricFamily,
        'How long finished jobs ran, finished_at - started_at (the last '
        'attempt of a retried job), by task; jobs that never started '
        'are not in it.  From this process\'s first scrape.',
        ('task',)),
    'myapp_job_queue_wait_seconds': Family(
        HistogramMetricFamily,
        'How long finished jobs waited before a worker started them, '
        'started_at - sent_at (created_at if never marked sent), by task; '
        'observed when they finish; includes countdowns, ETAs and, for a '
        'retried job, its earlier attempts.  From this process\'s first '
        'scrape.',
        ('task',)),
    'myapp_jobs': Family(
        GaugeMetricFamily,
        'Jobs not finished, by task and state (PENDING and RETRY wait for '
        'a worker, STARTED and PROGRESS run), now.',
        ('task', 'state')),
    'myapp_outbox_jobs': Family(
        GaugeMetricFamily,
        'Jobs the broker has not accepted yet (PENDING, sent_at NULL), '
        'those held for a far ETA included: the outbox\'s sweeper sends '
        'them.'),
    'myapp_outbox_oldest_age_seconds': Family(
        GaugeMetricFamily,
        'How long the unsent job that has waited longest has been ready to '
        'leave: since it was created, or since it was due for a job held '
        'for its ETA; 0 when none is.'),
    'myapp_periodic_job_last_run_age_seconds': Family(
        GaugeMetricFamily,
        'Seconds since beat last sent each periodic job (since it was made, '
        'if never), by name.',
        ('name',)),
    'myapp_periodic_job_enabled': Family(
        GaugeMetricFamily,
        '1 if the periodic job is enabled (beat sends it), 0 if paused.',
        ('name',)),
    'myapp_queue_depth': Family(
        GaugeMetricFamily,
        'Messages waiting in each broker queue, not yet taken by a worker.',
        ('queue',)),
    'myapp_live_workers': Family(
        GaugeMetricFamily,
        'Workers online: each wrote its heartbeat in the workers table '
        'within five heartbeats (workers.heartbeat_seconds).'),
    'myapp_metrics_source_up': Family(
        GaugeMetricFamily,
        '1 if this scrape read the source (database, queues) in '
        'time; 0 if it failed or took too long, and its families are left '
        'out of this scrape.',
        ('source',)),
}


def family(name):
    """An empty metric family of :data:`FAMILIES`."""
    kind, help_text, labels = FAMILIES[name]
    return kind(name, help_text, labels=labels)


# -- the view ---------------------------------------------------------------

def metrics(request):
    """The app's metrics, in the text format the scraper asks for (the
    Prometheus text format by default, OpenMetrics if its Accept says)."""
    encode, content_type = choose_encoder(request.headers.get('Accept'))
    response = request.response
    response.body = encode(request.registry[PROMETHEUS_REGISTRY])
    response.headers['Content-Type'] = content_type
    response.cache_control = 'no-store'
    return response


def prometheus_registry(pyramid_registry):
    """A CollectorRegistry of the app's own, with the jobs' collector in
    it; the collector is also kept in the Pyramid registry."""
    collector = pyramid_registry[JOBS_COLLECTOR] = JobsCollector(
        pyramid_registry)
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


# -- the collector ----------------------------------------------------------

class JobsCollector:
    """What ``/metrics`` shows, read at each scrape (prometheus_client
    calls :meth:`collect`); the finished jobs are kept here between
    scrapes (:class:`FinishedJobs`)."""

    def __init__(self, pyramid_registry):
        self.pyramid_registry = pyramid_registry
        self.finished = FinishedJobs()
        self.queues = BoundedCall(waiting_messages)
        #: What "now" is (tests set it).
        self.clock = utcnow

    def collect(self):
        up = {}
        families, up['database'], consumed = self.database_families()
        asked = self.queues.start(celery_app, consumed)
        depths, up['queues'] = answer_by(
            asked, time.monotonic() + BROKER_SECONDS, 'queues')
        if depths is not None:
            families += queue_families(depths)
        families.append(source_up_family(up))
        return families

    def database_families(self):
        """The families read from the database, whether it answered, and
        the queues the online workers consume."""
        now = self.clock()
        tasks = registered_tasks()
        try:
            with self.engine().connect() as connection:
                limit_statement_time(connection)
                self.finished.catch_up(connection, now)
                live = live_jobs(connection)
                outbox = outbox_jobs(connection)
                periodic = periodic_jobs(connection)
                workers = workers_seen(connection, self.pyramid_registry,
                                       now)
        except Exception as exc:
            log.warning('metrics: the database could not be read: %s: %s',
                        type(exc).__name__, mask_secrets(str(exc)))
            return [], False, []
        return [*self.finished.families(tasks), live_family(live, tasks),
                *outbox_families(outbox, now),
                *periodic_families(periodic, now),
                *worker_families(workers)], True, consumed_queues(workers)

    def engine(self):
        return self.pyramid_registry['dbsession_factory'].kw['bind']


def registered_tasks():
    """The app's task names: their series are shown at 0 from the start,
    so that a first job makes an increase (a series that appears at 1
    makes none for ``rate()``)."""
    return sorted(name for name, task in celery_app.tasks.items()
                  if isinstance(task, PyramidTask))


def limit_statement_time(connection):
    """On PostgreSQL, no statement of this scrape's transaction runs longer
    than :data:`DATABASE_SECONDS` (SQLite's readers wait for no one)."""
    if connection.dialect.name == 'postgresql':
        connection.execute(text(
            f'SET LOCAL statement_timeout = {int(DATABASE_SECONDS * 1000)}'))


# -- finished jobs: incremental ---------------------------------------------

class Histogram:
    """Counts per bucket of :data:`SECONDS_BUCKETS`, and their sum."""

    def __init__(self):
        self.counts = [0] * (len(SECONDS_BUCKETS) + 1)  # the last: +Inf
        self.sum = 0.0

    def observe(self, seconds):
        seconds = max(seconds, 0.0)  # clocks of two machines
        self.counts[bisect.bisect_left(SECONDS_BUCKETS, seconds)] += 1
        self.sum += seconds

    def buckets(self):
        """``[(le, cumulative count)]``, +Inf last."""
        return list(zip(BUCKET_LABELS, itertools.accumulate(self.counts)))


class FinishedJobs:
    """The finished jobs' counts and histograms, cumulative since the first
    scrape, and the ``(finished_at, id)`` of the last row read.

    Each scrape reads the rows after that watermark, in that order, so a
    row is read once: rows that share a ``finished_at`` are told apart by
    their id, across batches and scrapes.  Scrapes come on several
    threads (waitress): one reads and adds at a time.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.watermark = None
        self.finished = collections.Counter()  # (task, state): jobs
        self.durations = collections.defaultdict(Histogram)  # by task
        self.queue_waits = collections.defaultdict(Histogram)

    def catch_up(self, connection, now):
        """Add the jobs finished since the watermark, up to ``now`` minus
        :data:`SETTLE`; return how many rows were read."""
        until = now - SETTLE
        with self.lock:
            if self.watermark is None:
                self.watermark = (until, '')  # counting starts here
                return 0
            read = 0
            while read < MAX_ROWS_PER_SCRAPE:
                limit = min(BATCH_ROWS, MAX_ROWS_PER_SCRAPE - read)
                rows = connection.execute(
                    finished_after(self.watermark, until, limit)).all()
                for row in rows:
                    self.add(row)
                read += len(rows)
                if rows:
                    self.watermark = (rows[-1].finished_at, rows[-1].id)
                if len(rows) < limit:
                    break
            return read

    def add(self, job):
        self.finished[job.task_name, job.state] += 1
        if job.started_at is None:
            return  # revoked before it ran, or failed to start
        self.durations[job.task_name].observe(
            (job.finished_at - job.started_at).total_seconds())
        self.queue_waits[job.task_name].observe(
            (job.started_at - job.waiting_since).total_seconds())

    def families(self, tasks):
        """The counter and the two histograms, every task of ``tasks``
        shown (at 0 if none of its jobs finished)."""
        finished = family('myapp_jobs_finished')
        durations = family('myapp_job_duration_seconds')
        queue_waits = family('myapp_job_queue_wait_seconds')
        with self.lock:
            counted = set(tasks) | {task for task, _ in self.finished}
            for task in sorted(counted):
                for state in FINISHED:
                    finished.add_metric([task, state],
                                        self.finished[task, state])
                for histograms, metric in ((self.durations, durations),
                                           (self.queue_waits, queue_waits)):
                    histogram = histograms.get(task) or Histogram()
                    metric.add_metric([task], histogram.buckets(),
                                      histogram.sum)
        return [finished, durations, queue_waits]


def finished_after(watermark, until, limit):
    """The next rows by ``(finished_at, id)`` after ``watermark``, finished
    by ``until``.

    A range on ``finished_at`` alone (its index), without the ``OR`` a
    keyset comparison is usually written with: a planner may answer an
    ``OR`` by reading each side from its own index, and ``id > X`` alone
    is most of the table.
    """
    at, job_id = watermark
    return (select(Job.id, Job.task_name, Job.state, Job.started_at,
                   Job.finished_at,
                   func.coalesce(Job.sent_at, Job.created_at)
                   .label('waiting_since'))
            .where(Job.finished_at >= at, Job.finished_at <= until,
                   # At the watermark's own time, only the ids after it.
                   ~((Job.finished_at == at) & (Job.id <= job_id)))
            .order_by(Job.finished_at, Job.id)
            .limit(limit))


# -- what stands now: live jobs, the outbox, periodic jobs ------------------

def live_jobs(connection):
    """``{(task, state): jobs}`` of the jobs not finished.

    Grouped by state first, so that only the ``(state, created_at, id)``
    index gives the groups' order.  By task first, SQLite (whose
    statistics, after an ``ANALYZE``, say only that a state holds a
    seventh of the table: it keeps no histogram) walked the whole
    ``(task_name, created_at, id)`` index instead: 4 s a scrape at a
    million jobs (``benchmarks/metrics.py``).
    """
    rows = connection.execute(
        select(Job.state, Job.task_name, func.count())
        .where(Job.state.in_(LIVE_STATES))
        .group_by(Job.state, Job.task_name))
    return {(task, state): count for state, task, count in rows}


def live_family(live, tasks):
    jobs = family('myapp_jobs')
    for task in sorted(set(tasks) | {task for task, _ in live}):
        for state in LIVE_STATES:
            jobs.add_metric([task, state], live.get((task, state), 0))
    return jobs


def outbox_jobs(connection):
    """``(unsent jobs, since when the oldest is ready to leave)``, as
    :mod:`myapp.jobs.outbox` defines unsent."""
    ready_since = case((Job.due_at.is_(None), Job.created_at),
                       else_=Job.due_at)
    return connection.execute(
        select(func.count(), func.min(ready_since))
        .where(Job.sent_at.is_(None), Job.state == PENDING)).one()


def outbox_families(outbox, now):
    count, oldest = outbox
    age = 0.0 if oldest is None else \
        max((now - oldest).total_seconds(), 0.0)
    jobs = family('myapp_outbox_jobs')
    jobs.add_metric([], count)
    oldest_age = family('myapp_outbox_oldest_age_seconds')
    oldest_age.add_metric([], age)
    return [jobs, oldest_age]


def periodic_jobs(connection):
    """Every periodic job's name, switch and last run (a small table)."""
    return connection.execute(
        select(PeriodicJob.name, PeriodicJob.enabled, PeriodicJob.last_run_at,
               PeriodicJob.created_at).order_by(PeriodicJob.name)).all()


def periodic_families(periodic, now):
    age = family('myapp_periodic_job_last_run_age_seconds')
    enabled = family('myapp_periodic_job_enabled')
    for job in periodic:
        last = job.last_run_at or job.created_at
        age.add_metric([job.name], max((now - last).total_seconds(), 0.0))
        enabled.add_metric([job.name], 1 if job.enabled else 0)
    return [age, enabled]


# -- the queues, from the broker (bounded); the workers, from their rows ----

def waiting_messages(celery_app, consumed):
    """``{queue: messages waiting}`` (:mod:`myapp.workers.queues`), for
    the queues worth asking about: those configured and ``consumed``."""
    return queues.count_messages(
        celery_app, queues.known_queues(celery_app, consumed),
        BROKER_SECONDS)


def workers_seen(connection, pyramid_registry, now):
    """Each worker's (queues, whether it is online), from the small
    ``workers`` table (:mod:`myapp.workers.roster`)."""
    rows = connection.execute(select(
        Worker.queues, Worker.heartbeat_at, Worker.stopped_at)).all()
    return [(row.queues, status_of(row, pyramid_registry, now) == ONLINE)
            for row in rows]


def consumed_queues(workers):
    return sorted({name for names, online in workers if online
                   for name in names})


def queue_families(depths):
    depth = family('myapp_queue_depth')
    for queue, messages in sorted(depths.items()):
        depth.add_metric([queue], messages)
    return [depth]


def worker_families(workers):
    online = family('myapp_live_workers')
    online.add_metric([], sum(is_online for _, is_online in workers))
    return [online]


class BoundedCall:
    """A call to the broker in a daemon thread, so that a scrape can stop
    waiting for it (:func:`answer_by`); a daemon, so that a call that
    never returns does not keep the process from exiting either.

    While a call still hangs, scrapes wait for that one rather than start
    another: a broker that never answers holds one thread, not one per
    scrape.
    """

    def __init__(self, function):
        self.function = function
        self.lock = threading.Lock()
        self.running = None

    def start(self, *args):
        with self.lock:
            if self.running is None or self.running.done():
                self.running = in_daemon_thread(self.function, *args)
            return self.running


def in_daemon_thread(function, *args):
    future = concurrent.futures.Future()

    def run():
        future.set_running_or_notify_cancel()
        try:
            future.set_result(function(*args))
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=run, name=f'myapp-metrics-{function.__name__}',
                     daemon=True).start()
    return future


def answer_by(future, deadline, source):
    """``(answer, up)``: the call's answer (None: not available here), and
    whether the source answered in time (None: not asked)."""
    try:
        answer = future.result(timeout=max(deadline - time.monotonic(), 0))
    except concurrent.futures.TimeoutError:
        log.warning('metrics: %s: no answer in %g s', source, BROKER_SECONDS)
        return None, False
    except Exception as exc:
        log.warning('metrics: %s could not be read: %s: %s', source,
                    type(exc).__name__, exc)
        return None, False
    return answer, None if answer is None else True


def source_up_family(up):
    """``myapp_metrics_source_up`` for each source that was asked."""
    source_up = family('myapp_metrics_source_up')
    for source, answered in up.items():
        if answered is not None:
            source_up.add_metric([source], 1 if answered else 0)
    return source_up
