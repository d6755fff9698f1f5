"""``GET /metrics``: the Prometheus text format, finished jobs counted once
each from the first scrape, the jobs not finished, the outbox, the periodic
jobs, the broker's families bounded in time, open or behind a token as
``monitoring.open`` says, and no statement of a scrape that reads the
whole ``jobs`` table.

The collector's clock is set by each test (``clock``), so that times are
exact; the broker's call for queue depths is stubbed but in one test of
its own; live workers are read from the workers table.
"""
import datetime
import re
import threading
import time
import uuid

import prometheus_client.openmetrics.parser
import pytest
import webtest
from prometheus_client.parser import text_string_to_metric_families
from pyramid.paster import get_app
from sqlalchemy import create_engine, delete, event, text

from myapp import tokens
from myapp.models import Job, PeriodicJob
from myapp.models.types import UTC
from myapp.monitoring import metrics

from .jobs_support import transaction_of
from .support import write_ini

T0 = datetime.datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
ADD, MUL = 'myapp.tasks.add', 'myapp.tasks.mul'
BROKER_FAMILIES = {'myapp_queue_depth'}


class Clock:
    """The collector's "now", moved by the test."""

    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += datetime.timedelta(seconds=seconds)


@pytest.fixture
def clock(app):
    clock = Clock(T0)
    collector = app.registry[metrics.JOBS_COLLECTOR]
    collector.clock = clock
    # The broker's answer: tests of the database need none.
    collector.queues.function = lambda celery_app, consumed: None
    return clock


def at(seconds):
    """T0 plus ``seconds``."""
    return T0 + datetime.timedelta(seconds=seconds)


def job(task=ADD, state='SUCCESS', job_id=None, created=-60, sent=None,
        started=None, finished=None, **columns):
    """A job row; times in seconds from T0 (None: NULL)."""
    times = {'sent_at': sent, 'started_at': started,
             'finished_at': finished}
    return Job(id=job_id or str(uuid.uuid4()), task_name=task, state=state,
               origin='http', args=[], kwargs={}, options={},
               created_at=at(created),
               **{name: None if seconds is None else at(seconds)
                  for name, seconds in times.items()}, **columns)


def insert(app, *rows):
    with transaction_of(app) as request:
        request.dbsession.add_all(rows)


def scrape(api, **options):
    """``{family name: family}`` of one scrape, parsed."""
    response = api.get('/metrics', status=200, **options)
    return {family.name: family
            for family in text_string_to_metric_families(response.text)}


def value(families, family_name, sample=None, /, **labels):
    """The value of one sample, or None if it is not there."""
    for each in families[family_name].samples:
        if each.name == (sample or family_name) and each.labels == labels:
            return each.value
    return None


def finished(families, task, state):
    return value(families, 'myapp_jobs_finished',
                 'myapp_jobs_finished_total', task=task, state=state)


def histogram(families, name, task):
    """``({le: cumulative count}, count, sum)`` of one task's histogram."""
    samples = [each for each in families[name].samples
               if each.labels.get('task') == task]
    buckets = {each.labels['le']: each.value for each in samples
               if each.name == f'{name}_bucket'}
    count, total = (next(each.value for each in samples
                         if each.name == f'{name}_{suffix}')
                    for suffix in ('count', 'sum'))
    return buckets, count, total


# -- the format ----------------------------------------------------------

def test_the_text_format_parses_with_every_family_explained(api, clock):
    response = api.get('/metrics', status=200)
    assert response.headers['Content-Type'] == \
        'text/plain; version=0.0.4; charset=utf-8'
    assert response.headers['Cache-Control'] == 'no-store'
    families = {family.name: family for family in
                text_string_to_metric_families(response.text)}
    # The broker's families are left out: not wired here.
    assert set(families) == set(metrics.FAMILIES) - BROKER_FAMILIES
    for name, family in families.items():
        assert family.documentation == metrics.FAMILIES[name].help
    assert families['myapp_jobs_finished'].type == 'counter'
    assert families['myapp_job_duration_seconds'].type == 'histogram'
    assert families['myapp_jobs'].type == 'gauge'
    assert value(families, 'myapp_metrics_source_up',
                 source='database') == 1
    assert value(families, 'myapp_metrics_source_up', source='queues') \
        is None


def test_openmetrics_when_the_scraper_asks_for_it(api, clock):
    response = api.get('/metrics', status=200, headers={
        'Accept': 'application/openmetrics-text; version=1.0.0'})
    assert response.headers['Content-Type'].startswith(
        'application/openmetrics-text; version=1.0.0')
    parsed = prometheus_client.openmetrics.parser \
        .text_string_to_metric_families(response.text)
    assert {family.name for family in parsed} == \
        set(metrics.FAMILIES) - BROKER_FAMILIES


def test_every_task_is_shown_at_zero_before_its_first_job(api, clock):
    families = scrape(api)
    for state in ('SUCCESS', 'FAILURE', 'REVOKED'):
        assert finished(families, ADD, state) == 0
    assert value(families, 'myapp_jobs', task=ADD, state='PENDING') == 0
    buckets, count, total = histogram(families,
                                      'myapp_job_duration_seconds', ADD)
    assert count == 0 and total == 0 and buckets['+Inf'] == 0


# -- finished jobs ---------------------------------------------------------

def test_counters_grow_by_exactly_the_jobs_finished_between_scrapes(
        app, api, clock):
    # Finished before the first scrape's watermark (T0 - SETTLE): before
    # counting began.
    insert(app, job(finished=-10, started=-11))
    first = scrape(api)
    assert finished(first, ADD, 'SUCCESS') == 0
    insert(app,
           *[job(sent=-6, started=-4.5, finished=-1.5) for _ in range(3)],
           job(state='FAILURE', sent=-3, started=-3, finished=-2),
           job(MUL, 'REVOKED', finished=-2))
    # Finished less than SETTLE ago: not read yet.
    assert finished(scrape(api), ADD, 'SUCCESS') == 0
    clock.advance(10)
    second = scrape(api)
    assert finished(second, ADD, 'SUCCESS') == 3
    assert finished(second, ADD, 'FAILURE') == 1
    assert finished(second, MUL, 'REVOKED') == 1
    assert finished(second, MUL, 'SUCCESS') == 0
    # Nothing new: nothing more.
    assert scrape(api) == second
    insert(app, job(finished=4, started=3), job(MUL, finished=5, started=3))
    clock.advance(10)
    third = scrape(api)
    assert finished(third, ADD, 'SUCCESS') == 4
    assert finished(third, MUL, 'SUCCESS') == 1
    assert finished(third, MUL, 'REVOKED') == 1


def test_durations_and_queue_waits_of_the_finished_jobs(app, api, clock):
    scrape(api)
    insert(app,
           # Sent at -7, started at -5.5, ran 3 s.
           job(sent=-7, started=-5.5, finished=-2.5),
           # Never marked sent: it waited from its creation, 0.2 s.
           job(created=-4.2, started=-4, finished=-3.99),
           # Revoked before it ran: counted, not timed.
           job(MUL, 'REVOKED', finished=-2))
    clock.advance(10)
    families = scrape(api)
    buckets, count, total = histogram(families,
                                      'myapp_job_duration_seconds', ADD)
    assert count == 2 and total == pytest.approx(3.01)
    assert (buckets['0.01'], buckets['2.5'], buckets['5.0']) == (1, 1, 2)
    buckets, count, total = histogram(families,
                                      'myapp_job_queue_wait_seconds', ADD)
    assert count == 2 and total == pytest.approx(1.7)
    assert (buckets['0.1'], buckets['0.25'], buckets['1.0'],
            buckets['2.5']) == (0, 1, 1, 2)
    assert histogram(families, 'myapp_job_duration_seconds', MUL)[1] == 0
    assert finished(families, MUL, 'REVOKED') == 1


def test_jobs_finished_at_the_same_time_are_counted_once_each(
        app, api, clock, monkeypatch):
    """Rows that share a finished_at, read one per batch and two per
    scrape, and one more that appears at that time after a scrape: each
    is counted once, none is missed."""
    monkeypatch.setattr(metrics, 'BATCH_ROWS', 1)
    monkeypatch.setattr(metrics, 'MAX_ROWS_PER_SCRAPE', 2)
    scrape(api)
    same_time = dict(started=-3, finished=-2)
    insert(app, *[job(job_id=f'{letter}-same-time', **same_time)
                  for letter in 'abc'])
    clock.advance(10)
    assert finished(scrape(api), ADD, 'SUCCESS') == 2  # a, b
    insert(app, job(job_id='bb-same-time', **same_time))  # after b
    assert finished(scrape(api), ADD, 'SUCCESS') == 4  # bb, c
    assert finished(scrape(api), ADD, 'SUCCESS') == 4
    collector = app.registry[metrics.JOBS_COLLECTOR]
    assert collector.finished.watermark == (at(-2), 'c-same-time')


def test_scrapes_at_once_count_each_job_once(app, api, clock, monkeypatch):
    """waitress serves scrapes on several threads."""
    monkeypatch.setattr(metrics, 'BATCH_ROWS', 7)
    scrape(api)
    insert(app, *[job(started=-3, finished=-2 + i / 1000)
                  for i in range(200)])
    clock.advance(10)
    threads = [threading.Thread(target=scrape, args=(api,))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert finished(scrape(api), ADD, 'SUCCESS') == 200


# -- what stands now -------------------------------------------------------

def test_jobs_not_finished_by_task_and_state(app, api, clock):
    insert(app, job(state='PENDING'), job(state='PENDING'),
           job(state='RETRY', started=-5),
           job(MUL, 'STARTED', started=-5), job(MUL, 'PROGRESS', started=-5),
           job('other.task', 'PENDING'),
           job(state='SUCCESS', started=-5, finished=-4))
    families = scrape(api)
    expected = {(ADD, 'PENDING'): 2, (ADD, 'RETRY'): 1,
                (ADD, 'STARTED'): 0, (MUL, 'STARTED'): 1,
                (MUL, 'PROGRESS'): 1, (MUL, 'PENDING'): 0,
                ('other.task', 'PENDING'): 1}
    for (task, state), count in expected.items():
        assert value(families, 'myapp_jobs', task=task,
                     state=state) == count, (task, state)
    assert value(families, 'myapp_jobs', task=ADD, state='SUCCESS') is None


def test_the_outbox_counts_the_unsent_jobs(app, api, clock):
    insert(app,
           job(state='PENDING', created=-60),  # unsent for a minute
           job(state='PENDING', created=-600, due_at=at(3600)),  # held
           job(state='PENDING', created=-900, sent=-899),  # sent
           job(state='REVOKED', created=-1200, finished=-1100))  # never
    families = scrape(api)
    assert value(families, 'myapp_outbox_jobs') == 2
    assert value(families, 'myapp_outbox_oldest_age_seconds') == 60
    # A held job past its time has been ready since it was due.
    insert(app, job(state='PENDING', created=-3600, due_at=at(-120)))
    families = scrape(api)
    assert value(families, 'myapp_outbox_jobs') == 3
    assert value(families, 'myapp_outbox_oldest_age_seconds') == 120


def test_an_empty_outbox(api, clock):
    families = scrape(api)
    assert value(families, 'myapp_outbox_jobs') == 0
    assert value(families, 'myapp_outbox_oldest_age_seconds') == 0


def test_periodic_jobs_last_run_age_and_switch(app, api, clock):
    insert(app,
           PeriodicJob(name='tick', task=ADD, type='integer', schedule=60,
                       enabled=True, last_run_at=at(-30),
                       created_at=at(-86400)),
           PeriodicJob(name='paused', task=ADD, type='integer', schedule=60,
                       enabled=False, created_at=at(-600)))
    families = scrape(api)
    age = 'myapp_periodic_job_last_run_age_seconds'
    assert value(families, age, name='tick') == 30
    assert value(families, age, name='paused') == 600  # never: since made
    assert value(families, 'myapp_periodic_job_enabled', name='tick') == 1
    assert value(families, 'myapp_periodic_job_enabled', name='paused') == 0


# -- the broker ------------------------------------------------------------

def test_queue_depths_from_the_memory_broker(app, api, clock):
    from kombu import Queue

    from myapp.celery_integration import celery_app
    from .support import RUN_QUEUE

    collector = app.registry[metrics.JOBS_COLLECTOR]
    collector.queues.function = metrics.waiting_messages
    before = value(scrape(api), 'myapp_queue_depth', queue=RUN_QUEUE)
    with celery_app.connection_for_write() as connection:
        producer = connection.Producer()
        for number in range(2):
            producer.publish({'n': number}, routing_key=RUN_QUEUE,
                             declare=[Queue(RUN_QUEUE)], serializer='json')
    families = scrape(api)
    assert value(families, 'myapp_queue_depth', queue=RUN_QUEUE) == \
        before + 2
    for source in ('database', 'queues'):
        assert value(families, 'myapp_metrics_source_up',
                     source=source) == 1


def test_live_workers_are_those_with_a_recent_heartbeat(app, api, clock):
    from myapp.models import Worker

    def worker(hostname, silent_seconds, stopped=False, queues=('celery',)):
        beat = at(-silent_seconds)
        return Worker(hostname=hostname, pid=1, pool='prefork',
                      concurrency=2, queues=list(queues), active=[],
                      processed=0, software='celery', started_at=beat,
                      heartbeat_at=beat,
                      stopped_at=beat if stopped else None)

    consumed = []
    collector = app.registry[metrics.JOBS_COLLECTOR]
    collector.queues.function = lambda celery_app, queues: \
        consumed.append(queues) or {}
    insert(app, worker('celery@a', 1, queues=['celery', 'reports']),
           worker('celery@b', 3), worker('celery@gone', 60, queues=['old']),
           worker('celery@stopped', 1, stopped=True))
    assert value(scrape(api), 'myapp_live_workers') == 2
    # The queues asked of the broker are those online workers consume.
    assert consumed == [['celery', 'reports']]


def test_a_broker_that_hangs_is_left_out_in_bounded_time(app, api, clock,
                                                         monkeypatch):
    monkeypatch.setattr(metrics, 'BROKER_SECONDS', 0.3)
    release, calls = threading.Event(), []

    def hang(celery_app, consumed):
        calls.append(1)
        release.wait(10)
        return {'celery': 1}

    collector = app.registry[metrics.JOBS_COLLECTOR]
    collector.queues.function = hang
    try:
        for _ in range(2):
            started = time.monotonic()
            families = scrape(api)
            assert time.monotonic() - started < 1.5
            assert 'myapp_queue_depth' not in families
            assert value(families, 'myapp_live_workers') == 0
            up = {source: value(families, 'myapp_metrics_source_up',
                                source=source)
                  for source in ('database', 'queues')}
            assert up == {'database': 1, 'queues': 0}
        # The second scrape waited for the call that hangs; it did not
        # start another.
        assert calls == [1]
    finally:
        release.set()


# -- the database --------------------------------------------------------

def test_a_database_that_fails_is_said_and_the_scrape_answers(app, api,
                                                              clock):
    collector = app.registry[metrics.JOBS_COLLECTOR]
    unreachable = create_engine('sqlite:////nonexistent-dir/x.sqlite')
    collector.engine = lambda: unreachable
    families = scrape(api)
    assert value(families, 'myapp_metrics_source_up', source='database') \
        == 0
    assert 'myapp_jobs' not in families


def statements_of_a_scrape(app, api, clock):
    """The engine, and the SQL statements (and parameters) of a scrape
    that reads finished jobs, live jobs, the outbox and the periodic jobs;
    the ids of the jobs it added, last."""
    engine = app.registry['dbsession_factory'].kw['bind']
    scrape(api)  # sets the watermark
    rows = [job(started=-3, finished=-2), job(state='PENDING')]
    ids = [row.id for row in rows]
    insert(app, *rows)
    clock.advance(10)
    seen = []

    def capture(conn, cursor, statement, parameters, context, many):
        seen.append((statement, parameters))

    event.listen(engine, 'before_cursor_execute', capture)
    try:
        scrape(api)
    finally:
        event.remove(engine, 'before_cursor_execute', capture)
    selects = [(statement, parameters) for statement, parameters in seen
               if statement.lstrip().upper().startswith('SELECT')]
    assert any('finished_at >=' in statement for statement, _ in selects)
    assert any('GROUP BY' in statement for statement, _ in selects)
    assert any('periodic_jobs' in statement for statement, _ in selects)
    assert len(selects) >= 4
    return engine, selects, ids


#: The indexes of jobs that hold only some rows (partial): walking one
#: whole reads those rows, not the table.
PARTIAL_INDEXES = {index.name for index in Job.__table__.indexes
                   if index.dialect_options['sqlite']['where'] is not None}
#: sqlite_stat1 as ANALYZE left it in benchmarks/metrics.py (1,000,000
#: finished jobs, 2,000 not): SQLite then thinks a state holds a seventh
#: of the table, and walked the whole task index for a GROUP BY of the
#: unfinished jobs by task and state (4 s a scrape).
MILLION_JOBS_STATISTICS = {
    'ix_jobs_worker_created_at_id': '1002000 200400 1 1',
    'ix_jobs_origin_created_at': '1002000 501000 1',
    'ix_jobs_unsent': '100 100',
    'ix_jobs_finished_at': '1002000 1',
    'ix_jobs_state_created_at_id': '1002000 143143 1 1',
    'ix_jobs_task_name_created_at_id': '1002000 200400 1 1',
    'ix_jobs_created_at_id': '1002000 1 1',
    'sqlite_autoindex_jobs_2': '1002000 1002000',
    'sqlite_autoindex_jobs_1': '1002000 1',
}


def reads_all_of_jobs(line):
    """Whether a line of SQLite's plan reads every row of jobs: the table
    itself, or the whole of an index that is not partial.  (``SEARCH``
    reads a range of an index.)"""
    scan = re.search(r'\bSCAN jobs\b(?: USING (?:COVERING )?INDEX (\w+))?',
                     line)
    return scan is not None and scan.group(1) not in PARTIAL_INDEXES


def pretend_a_million_jobs(engine, statistics):
    """Give SQLite's planner ``statistics`` for jobs (none: as when ANALYZE
    never ran, the app's own case)."""
    with engine.begin() as connection:
        connection.execute(text('ANALYZE'))  # makes sqlite_stat1
        connection.execute(text('DELETE FROM sqlite_stat1'))
        for index, stat in statistics.items():
            connection.execute(text(
                "INSERT INTO sqlite_stat1 VALUES ('jobs', :index, :stat)"),
                {'index': index, 'stat': stat})
    engine.dispose()  # new connections read them


def test_the_plan_checker_sees_a_whole_index_walked():
    assert reads_all_of_jobs('SCAN jobs')
    assert reads_all_of_jobs(
        'SCAN jobs USING INDEX ix_jobs_task_name_created_at_id')
    assert not reads_all_of_jobs('SCAN jobs USING INDEX ix_jobs_unsent')
    assert not reads_all_of_jobs('SEARCH jobs USING INDEX '
                                 'ix_jobs_state_created_at_id (state=?)')
    assert not reads_all_of_jobs('SCAN periodic_jobs')


@pytest.mark.parametrize('statistics', [{}, MILLION_JOBS_STATISTICS],
                         ids=['no statistics', 'a million jobs'])
def test_no_statement_of_a_scrape_reads_all_of_jobs_on_sqlite(
        app, api, clock, statistics):
    engine = app.registry['dbsession_factory'].kw['bind']
    pretend_a_million_jobs(engine, statistics)
    try:
        engine, selects, _ = statements_of_a_scrape(app, api, clock)
        with engine.connect() as connection:
            cursor = connection.connection.cursor()
            for statement, parameters in selects:
                plan = [row[3] for row in cursor.execute(
                    f'EXPLAIN QUERY PLAN {statement}', parameters)]
                assert plan and not any(
                    reads_all_of_jobs(line) for line in plan), \
                    (statement, plan)
    finally:
        pretend_a_million_jobs(engine, {})


@pytest.mark.services
def test_no_statement_of_a_scrape_reads_all_of_jobs_on_postgresql(
        tmp_path, postgres_database):
    ini = write_ini(tmp_path, broker='memory', database='postgresql')
    app = get_app(ini)
    api = webtest.TestApp(app)
    clock = Clock(T0)
    collector = app.registry[metrics.JOBS_COLLECTOR]
    collector.clock = clock
    collector.queues.function = lambda celery_app, consumed: None
    ids = []
    try:
        engine, selects, ids = statements_of_a_scrape(app, api, clock)
        with engine.connect() as connection:
            cursor = connection.connection.cursor()
            # On a small table a sequential scan is cheapest, index or not:
            # this way the planner reads a whole table only if it must.
            cursor.execute('SET enable_seqscan = off')
            for statement, parameters in selects:
                cursor.execute(f'EXPLAIN {statement}', parameters)
                plan = '\n'.join(row[0] for row in cursor.fetchall())
                assert 'Seq Scan on jobs' not in plan, (statement, plan)
    finally:
        # The run's PostgreSQL database is shared: leave no row behind.
        with transaction_of(app) as request:
            request.dbsession.execute(delete(Job).where(Job.id.in_(ids)))
        app.registry['dbsession_factory'].kw['bind'].dispose()


# -- access ----------------------------------------------------------------

@pytest.mark.parametrize('open_setting, status', [('true', 200),
                                                  ('false', 401)])
def test_open_or_behind_a_token(tmp_path, initialize_db, open_setting,
                                status):
    ini = initialize_db(write_ini(
        tmp_path, broker='memory',
        app=f'auth.enabled = true\nmonitoring.open = {open_setting}'))
    app = get_app(ini)
    client = webtest.TestApp(app)
    response = client.get('/metrics', status=status)
    if status == 401:
        assert response.json['error'] == 'a token is needed'
        with transaction_of(app) as request:
            secret = tokens.create(request.dbsession, 'prometheus', 'viewer')
        response = client.get('/metrics', status=200, headers={
            'Authorization': f'Bearer {secret}'})
    assert 'myapp_jobs_finished_total' in response.text
    app.registry['dbsession_factory'].kw['bind'].dispose()
