"""The job list (GET /api/jobs): keyset pagination against OFFSET.

The evidence for the keyset pagination of ``myapp.jobs.pagination``.  It
creates a jobs table with the app's own migration, fills it with 1,000,000
rows in one server-side INSERT ... SELECT, and times the app's own page
query (``page_query``) beside the same query paged with OFFSET: the first
page, a page deep in the list, and pages filtered by task and by state.
SQLite always; PostgreSQL too when it answers on localhost (in a database of
its own, dropped afterwards).

Run from the repository root (so ``tests.support`` is importable)::

    .venv/bin/python -m benchmarks.job_list [ROWS]
"""
import os
import statistics
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from myapp.jobs.pagination import JobFilter, page_query  # noqa: E402
from myapp.models import Job  # noqa: E402
from tests.support import (POSTGRES_ADMIN_URL, run_initialize_db,  # noqa: E402
                           service_available, write_ini)

ROWS = 1_000_000
PAGE = 20
REPEAT = 5
TASKS = ('myapp.tasks.add', 'myapp.tasks.mul', 'myapp.tasks.xsum',
         'myapp.tasks.record_sum', 'myapp.tasks.slow_add')

#: Row i: one of five tasks in turn; 1% FAILURE, 2% REVOKED, else SUCCESS;
#: one of four workers in turn; 10% sent by beat, else over HTTP; one
#: second apart, the newest last.  Written by the database itself.
INSERT = """
    INSERT INTO jobs (id, task_name, args, kwargs, options, state, result,
                      origin, worker, retries, sent_at, created_at,
                      started_at, finished_at)
    SELECT {id},
        CASE i % 5 WHEN 0 THEN 'myapp.tasks.add' WHEN 1 THEN 'myapp.tasks.mul'
            WHEN 2 THEN 'myapp.tasks.xsum' WHEN 3 THEN 'myapp.tasks.record_sum'
            ELSE 'myapp.tasks.slow_add' END,
        {json_args}, {json_object}, {json_object},
        CASE WHEN i % 100 = 0 THEN 'FAILURE' WHEN i % 50 = 1 THEN 'REVOKED'
            ELSE 'SUCCESS' END,
        {json_result},
        CASE WHEN i % 10 = 0 THEN 'beat:nightly' ELSE 'http' END,
        {worker}, 0,
        {time}, {time}, {time}, {time}
    FROM {numbers}
"""
FILL = {
    'sqlite': 'WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 '
              'FROM n WHERE i < :rows)' + INSERT.format(
                  id="printf('%08x-0000-4000-8000-%012x', i, i)",
                  json_args="'[1, 2]'", json_object="'{}'", json_result="'3'",
                  worker="'celery@w' || (i % 4)",
                  # SQLAlchemy's own SQLite format, so comparisons hold.
                  time="strftime('%Y-%m-%d %H:%M:%S', 1700000000 + i, "
                       "'unixepoch') || '.000000'",
                  numbers='n'),
    'postgresql': INSERT.format(
        id="lpad(to_hex(i), 8, '0') || '-0000-4000-8000-' "
           "|| lpad(to_hex(i), 12, '0')",
        json_args="'[1, 2]'::json", json_object="'{}'::json",
        json_result="'3'::json", time='to_timestamp(1700000000 + i)',
        worker="'celery@w' || (i % 4)",
        numbers='generate_series(1, :rows) AS i'),
}

#: (what, filters, how deep in the (filtered) list the page starts)
PAGES = [
    ('all', {}, 0),
    ('all', {}, 0.9),
    ('task=slow_add', {'task': 'myapp.tasks.slow_add'}, 0),
    ('task=slow_add', {'task': 'myapp.tasks.slow_add'}, 0.9),
    ('state=FAILURE', {'state': 'FAILURE'}, 0),
    ('state=FAILURE', {'state': 'FAILURE'}, 0.9),
    ('origin=beat:nightly', {'origin': 'beat:nightly'}, 0),
    ('origin=beat:nightly', {'origin': 'beat:nightly'}, 0.9),
    ('worker=celery@w1', {'worker': 'celery@w1'}, 0),
    ('worker=celery@w1', {'worker': 'celery@w1'}, 0.9),
]


def fill(engine, rows):
    started = time.monotonic()
    with engine.begin() as connection:
        connection.execute(text(FILL[engine.dialect.name]),
                           {'rows': rows})
    with engine.begin() as connection:
        connection.execute(text('ANALYZE'))
    return time.monotonic() - started


def timed(session, query):
    """Median milliseconds of ``REPEAT`` runs, and the ids of the page."""
    durations = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        jobs = session.scalars(query).all()
        durations.append((time.perf_counter() - started) * 1000)
    return statistics.median(durations), [job.id for job in jobs[:PAGE]]


def measure(engine):
    """{label: (keyset ms, offset ms)}; both must return the same page."""
    cells = {}
    with Session(engine) as session:
        for what, filters, depth in PAGES:
            job_filter = JobFilter(**filters)
            newest_first = select(Job).where(
                *job_filter.conditions()).order_by(
                Job.created_at.desc(), Job.id.desc())
            listed = session.scalar(select(func.count()).select_from(
                newest_first.order_by(None).subquery()))
            skip = int(listed * depth)
            before = None
            if skip:  # the cursor the previous page would have handed out
                before = tuple(session.execute(
                    newest_first.with_only_columns(Job.created_at, Job.id)
                    .offset(skip - 1).limit(1)).one())
            keyset_ms, keyset_page = timed(
                session, page_query(PAGE, before, job_filter))
            offset_ms, offset_page = timed(
                session, newest_first.offset(skip).limit(PAGE))
            assert keyset_page == offset_page, (what, skip)
            cells[f'{what}, from row {skip:,}'] = (keyset_ms, offset_ms)
    return cells


def postgresql_database():
    """A fresh database URL and a function that drops it."""
    name = f'myapp_bench_{uuid.uuid4().hex[:8]}'
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level='AUTOCOMMIT')
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE {name}'))

    def drop():
        with admin.connect() as connection:
            connection.execute(
                text(f'DROP DATABASE IF EXISTS {name} WITH (FORCE)'))
        admin.dispose()

    url = POSTGRES_ADMIN_URL.rsplit('/', 1)[0] + '/' + name
    return url, drop


def run(database, directory, rows):
    ini = write_ini(directory, broker='memory', database=database)
    run_initialize_db(ini)
    url = database.replace('%(here)s', directory)
    engine = create_engine(url)
    try:
        seconds = fill(engine, rows)
        print(f'{engine.dialect.name}: {rows:,} rows written in '
              f'{seconds:.1f}s', file=sys.stderr)
        return measure(engine)
    finally:
        engine.dispose()


def main(argv):
    rows = int(argv[1]) if len(argv) > 1 else ROWS
    results = {}
    with tempfile.TemporaryDirectory(prefix='myapp-bench-') as directory:
        results['SQLite'] = run('sqlite:///%(here)s/jobs.sqlite', directory,
                                rows)
    if service_available('postgresql'):
        url, drop = postgresql_database()
        try:
            with tempfile.TemporaryDirectory(prefix='myapp-bench-') as d:
                results['PostgreSQL'] = run(url, d, rows)
        finally:
            drop()
    else:
        print('PostgreSQL is not reachable on localhost: skipped',
              file=sys.stderr)
    print_table(results, rows)


def print_table(results, rows):
    print(f'\nGET /api/jobs on {rows:,} jobs, {PAGE} per page: median of '
          f'{REPEAT} runs, milliseconds\n')
    header = f'{"database":<11} {"page":<36} {"keyset":>8} {"OFFSET":>9}'
    print(header)
    print('-' * len(header))
    for database, cells in results.items():
        for label, (keyset_ms, offset_ms) in cells.items():
            print(f'{database:<11} {label:<36} {keyset_ms:>8.2f} '
                  f'{offset_ms:>9.2f}')


if __name__ == '__main__':
    main(sys.argv)
