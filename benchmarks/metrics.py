"""GET /metrics on a million jobs, beside a view that returns a constant.

The evidence that a scrape costs what changed, not the history
(``myapp.monitoring.metrics``).  It creates a jobs table with the app's
own migration and fills it with 1,000,000 finished rows (``job_list.py``'s
fill: one server-side INSERT ... SELECT, then ANALYZE), adds 2,000 jobs
not finished (a tenth of their PENDING ones unsent) and 20 periodic jobs,
and boots myapp's own app with one more view, ``GET /bench/constant``,
that returns a constant (the baseline: the same app, tweens and
transaction, no work).  Through webtest, in this process, it times:

* the constant view;
* ``/metrics`` when no job finished since the last scrape;
* ``/metrics`` when 1,000, and then 10,000, jobs finished since the last
  scrape (written before each scrape, within the minute the collector's
  clock moves on by: each scrape reads exactly those);
* for reference, the ``GROUP BY task_name, state`` over the whole table
  that a naive ``/metrics`` would run at each scrape.

The broker's two families are stubbed out (no broker call): their cost
is ``myapp.workers``'.  After the rounds it checks that the counters hold
exactly the jobs written, and prints the plan of each statement of a
scrape.  SQLite always; PostgreSQL too when it answers on localhost (in a
database of its own, dropped afterwards).

Run from the repository root (so ``tests.support`` is importable)::

    .venv/bin/python -m benchmarks.metrics [ROWS]
"""
import datetime
import os
import statistics
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import webtest  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from pyramid.config import Configurator  # noqa: E402
from pyramid.paster import get_app  # noqa: E402
from pyramid.response import Response  # noqa: E402
from pyramid.security import NO_PERMISSION_REQUIRED  # noqa: E402
from sqlalchemy import create_engine, event, insert, text  # noqa: E402

import myapp  # noqa: E402
from benchmarks.job_list import (ROWS, TASKS, fill,  # noqa: E402
                                 postgresql_database)
from myapp.models import Job, PeriodicJob  # noqa: E402
from myapp.models.types import utcnow  # noqa: E402
from myapp.monitoring import metrics  # noqa: E402
from tests.support import (run_initialize_db, service_available,  # noqa: E402
                           write_ini)

REPEAT = 15
#: Jobs finished between two scrapes, each measured over REPEAT scrapes.
FINISHED_BETWEEN = (1_000, 10_000)
LIVE = {'PENDING': 1_000, 'STARTED': 500, 'PROGRESS': 250, 'RETRY': 250}
PERIODIC = 20
#: How far the collector's clock moves between two scrapes.
SCRAPE_INTERVAL = datetime.timedelta(seconds=60)
FULL_GROUP_BY = 'SELECT task_name, state, count(*) FROM jobs ' \
                'GROUP BY task_name, state'


def main_app(global_config, **settings):
    """myapp, plus ``GET /bench/constant`` (an ini's ``use =
    call:benchmarks.metrics:main_app``)."""
    with Configurator(settings=settings) as config:
        myapp.configure(config, global_config['__file__'])
        config.add_route('bench.constant', '/bench/constant')
        config.add_view(constant_view, route_name='bench.constant',
                        request_method='GET',
                        permission=NO_PERMISSION_REQUIRED)
    return config.make_wsgi_app()


def constant_view(request):
    return Response('ok\n', content_type='text/plain')


class Clock:
    """The collector's "now": moved on by SCRAPE_INTERVAL per scrape."""

    def __init__(self):
        self.now = utcnow().replace(microsecond=0)

    def __call__(self):
        return self.now


# -- the data --------------------------------------------------------------

def add_live_and_periodic_jobs(engine, now):
    rows, created = [], now - datetime.timedelta(hours=1)
    for state, count in LIVE.items():
        for i in range(count):
            unsent = state == 'PENDING' and i % 10 == 0
            rows.append(job_row(TASKS[i % len(TASKS)], state, created,
                                sent_at=None if unsent else created,
                                started_at=None if state == 'PENDING'
                                else created))
    periodic = [{'name': f'periodic-{i}', 'task': TASKS[i % len(TASKS)],
                 'args': [], 'kwargs': {}, 'options': {}, 'type': 'integer',
                 'schedule': 60, 'enabled': i % 5 != 0, 'source': 'api',
                 'last_run_at': now - datetime.timedelta(seconds=i),
                 'total_runs': 1, 'created_at': created, 'changed_at': created}
                for i in range(PERIODIC)]
    with engine.begin() as connection:
        connection.execute(insert(Job.__table__), rows)
        connection.execute(insert(PeriodicJob.__table__), periodic)
        connection.execute(text('ANALYZE'))


def job_row(task, state, at, sent_at=None, started_at=None,
            finished_at=None):
    return {'id': str(uuid.uuid4()), 'task_name': task, 'args': [1, 2],
            'kwargs': {}, 'options': {}, 'state': state, 'origin': 'http',
            'retries': 0, 'lost_runs': 0, 'created_at': at,
            'sent_at': sent_at, 'started_at': started_at,
            'finished_at': finished_at}


def finish_jobs(engine, count, since):
    """``count`` jobs finished in the SCRAPE_INTERVAL after ``since`` (on
    whole seconds, so that many share a finished_at)."""
    seconds = int(SCRAPE_INTERVAL.total_seconds())
    rows = []
    for i in range(count):
        finished_at = since + datetime.timedelta(seconds=1 + i % seconds)
        started_at = finished_at - datetime.timedelta(seconds=i % 7)
        rows.append(job_row(TASKS[i % len(TASKS)],
                            'FAILURE' if i % 100 == 0 else 'SUCCESS',
                            started_at, sent_at=started_at,
                            started_at=started_at, finished_at=finished_at))
    with engine.begin() as connection:
        connection.execute(insert(Job.__table__), rows)


# -- the measures ------------------------------------------------------------

def median_ms(function, repeat=REPEAT):
    durations = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        durations.append((time.perf_counter() - started) * 1000)
    return statistics.median(durations)


def finished_total(client):
    """The sum of myapp_jobs_finished_total, as a scrape shows it."""
    response = client.get('/metrics', status=200)
    return sum(sample.value
               for family in text_string_to_metric_families(response.text)
               if family.name == 'myapp_jobs_finished'
               for sample in family.samples
               if sample.name == 'myapp_jobs_finished_total')


def measure(client, engine, clock):
    """{label: ms} and the number of jobs the counters must hold."""
    scrape = lambda: client.get('/metrics', status=200)  # noqa: E731
    cells = {'constant view (the baseline)':
             median_ms(lambda: client.get('/bench/constant', status=200))}
    scrape()  # the first: sets the watermark
    cells['/metrics, no job finished since the last'] = median_ms(scrape)
    written = 0
    for count in FINISHED_BETWEEN:
        durations = []
        for _ in range(REPEAT):
            since = clock.now - metrics.SETTLE
            clock.now += SCRAPE_INTERVAL
            finish_jobs(engine, count, since)
            written += count
            durations.append(median_ms(scrape, repeat=1))
        cells[f'/metrics, {count:,} finished since the last'] = \
            statistics.median(durations)

    def full_group_by():
        with engine.connect() as connection:
            connection.execute(text(FULL_GROUP_BY)).all()

    cells['(a GROUP BY of the whole jobs table)'] = median_ms(
        full_group_by, repeat=3)
    return cells, written


def plans(client, engine):
    """The plan of each SELECT of a scrape."""
    seen = []

    def capture(conn, cursor, statement, parameters, context, many):
        if statement.lstrip().upper().startswith('SELECT'):
            seen.append((statement, parameters))

    event.listen(engine, 'before_cursor_execute', capture)
    try:
        client.get('/metrics', status=200)
    finally:
        event.remove(engine, 'before_cursor_execute', capture)
    explain = 'EXPLAIN QUERY PLAN' if engine.dialect.name == 'sqlite' \
        else 'EXPLAIN'
    found = []
    with engine.connect() as connection:
        cursor = connection.connection.cursor()
        for statement, parameters in seen:
            cursor.execute(f'{explain} {statement}', parameters)
            lines = [row[-1] for row in cursor.fetchall()]
            found.append((' '.join(statement.split())[:90], lines))
        cursor.close()
    return found


def run(database, directory, rows):
    ini = write_ini(directory, broker='memory', database=database)
    run_initialize_db(ini)
    with open(ini) as handle:
        settings = handle.read()
    with open(ini, 'w') as handle:
        handle.write(settings.replace(
            'use = egg:myapp', 'use = call:benchmarks.metrics:main_app'))
    url = database.replace('%(here)s', directory)
    filler = create_engine(url)
    try:
        seconds = fill(filler, rows)
    finally:
        filler.dispose()
    clock = Clock()
    app = get_app(ini)
    engine = app.registry['dbsession_factory'].kw['bind']
    name = engine.dialect.name
    print(f'{name}: {rows:,} rows written in {seconds:.1f}s',
          file=sys.stderr)
    try:
        add_live_and_periodic_jobs(engine, clock.now)
        collector = app.registry[metrics.JOBS_COLLECTOR]
        collector.clock = clock
        collector.queues.function = lambda celery_app, consumed: None
        client = webtest.TestApp(app)
        cells, written = measure(client, engine, clock)
        counted = finished_total(client)
        assert counted == written, (counted, written)
        print(f'{name}: the counters hold the {written:,} jobs written '
              'since the first scrape, each once', file=sys.stderr)
        return cells, plans(client, engine)
    finally:
        engine.dispose()


def main(argv):
    rows = int(argv[1]) if len(argv) > 1 else ROWS
    results, all_plans = {}, {}
    with tempfile.TemporaryDirectory(prefix='myapp-bench-') as directory:
        results['SQLite'], all_plans['SQLite'] = run(
            'sqlite:///%(here)s/jobs.sqlite', directory, rows)
    if service_available('postgresql'):
        url, drop = postgresql_database()
        try:
            with tempfile.TemporaryDirectory(prefix='myapp-bench-') as d:
                results['PostgreSQL'], all_plans['PostgreSQL'] = run(
                    url, d, rows)
        finally:
            drop()
    else:
        print('PostgreSQL is not reachable on localhost: skipped',
              file=sys.stderr)
    print_table(results, rows)
    print_plans(all_plans)


def print_table(results, rows):
    print(f'\nGET /metrics on {rows:,} jobs (webtest, in process): median of '
          f'{REPEAT} requests, milliseconds\n')
    header = f'{"database":<11} {"request":<44} {"ms":>8} {"x constant":>11}'
    print(header)
    print('-' * len(header))
    for database, cells in results.items():
        baseline = cells['constant view (the baseline)']
        for label, ms in cells.items():
            print(f'{database:<11} {label:<44} {ms:>8.2f} '
                  f'{ms / baseline:>10.1f}x')


def print_plans(all_plans):
    print('\nThe plans of a scrape\'s statements')
    for database, found in all_plans.items():
        for statement, lines in found:
            print(f'\n{database}: {statement}...')
            for line in lines:
                print(f'    {line}')


if __name__ == '__main__':
    main(sys.argv)
