"""Embedded (server-less) brokers side by side: filesystem vs SQLAlchemy.

The evidence for README.rst's "Why the embedded default is the filesystem
transport".  For each transport it writes an ini in a temporary directory,
creates the database, starts a real ``pceleryd INI --concurrency 2`` and
measures, from this process, what a developer notices: how long one task
takes to come back, how fast a burst drains, and whether broadcast commands
(``inspect ping``, ``revoke``) reach the worker.

Run from the repository root (so ``tests.support`` is importable)::

    .venv/bin/python -m benchmarks.embedded_transports
"""
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pyramid.paster import get_app  # noqa: E402

from tests.support import Worker, run_initialize_db, write_ini  # noqa: E402

ROUND_TRIPS = 50
BURST = 200
REVOKE_COUNTDOWN = 3   # long enough for the revoke to arrive before the run
RESULT_TIMEOUT = 30


def measure(broker_for):
    """Run every measurement on one transport; return {row: cell}."""
    with tempfile.TemporaryDirectory(prefix='myapp-bench-') as directory:
        ini = write_ini(directory, broker=broker_for(directory))
        run_initialize_db(ini)
        worker = Worker(ini, '--concurrency', '2')
        try:
            worker.start(timeout=60)
            # Configure this process's celery_app from the same ini, as
            # pshell or the web app would.
            get_app(ini)
            from myapp.celery_integration import celery_app
            from myapp.tasks import add
            cells = run_measurements(celery_app, add)
        except Exception as exc:  # a broken transport is a result, too
            first_line = (str(exc).splitlines() or [''])[0]
            cells = {'error': f'{type(exc).__name__}: {first_line}'[:60]}
        finally:
            worker.stop()
        # Speed means little if the worker was failing ("database is
        # locked"...) meanwhile.
        cells['worker log ERROR lines'] = sum(
            ' ERROR ' in line for line in worker.output().splitlines())
        return cells


def run_measurements(celery_app, add):
    cells = {}
    with celery_app.connection_for_write() as connection:
        cells['polling interval (s)'] = connection.transport.polling_interval

    # One task first: the connection set-up and the broker's table or
    # folder creation are paid once, not by the first measured task.
    add.delay(0, 0).get(timeout=RESULT_TIMEOUT, interval=0.01)

    latencies = []
    for i in range(ROUND_TRIPS):
        started = time.perf_counter()
        assert add.delay(i, i).get(timeout=RESULT_TIMEOUT,
                                   interval=0.01) == 2 * i
        latencies.append((time.perf_counter() - started) * 1000)
    cells['round trip median (ms)'] = statistics.median(latencies)
    cells['round trip p90 (ms)'] = statistics.quantiles(
        latencies, n=10, method='inclusive')[-1]
    cells['round trip max (ms)'] = max(latencies)

    started = time.perf_counter()
    results = [add.delay(i, 1) for i in range(BURST)]
    for result in results:
        result.get(timeout=RESULT_TIMEOUT, interval=0.01)
    cells[f'{BURST} at once (tasks/s)'] = BURST / (time.perf_counter()
                                                   - started)

    replies = celery_app.control.inspect(timeout=2).ping()
    cells['inspect ping answered'] = 'yes' if replies else 'no'

    result = add.apply_async((1, 1), countdown=REVOKE_COUNTDOWN)
    celery_app.control.revoke(result.id)
    deadline = time.monotonic() + REVOKE_COUNTDOWN + 10
    while not result.ready() and time.monotonic() < deadline:
        time.sleep(0.1)
    cells['revoke (final state)'] = result.state
    return cells


def filesystem(directory):
    # write_ini adds development.ini's [celery:broker_transport_options]
    # (data/control/processed folders, polling_interval = 0.05).
    return 'filesystem'


def sqlalchemy_sqlite(directory):
    # kombu's own defaults: no transport options, so it polls once a second.
    return f'sqla+sqlite:///{directory}/broker.sqlite'


def cell(value):
    if isinstance(value, float):
        return f'{value:.2f}' if value < 10 else f'{value:.0f}'
    return str(value)


def print_table(columns):
    rows = list(dict.fromkeys(row for cells in columns.values()
                              for row in cells))
    width = max(map(len, rows))
    widths = [max(len(name), 12) for name in columns]
    print(f'{"":{width}}  ' + '  '.join(
        f'{name:>{w}}' for name, w in zip(columns, widths)))
    for row in rows:
        print(f'{row:{width}}  ' + '  '.join(
            f'{cell(cells.get(row, "-")):>{w}}'
            for cells, w in zip(columns.values(), widths)))


def main():
    started = time.monotonic()
    columns = {
        'filesystem (default)': measure(filesystem),
        'sqla+sqlite (baseline)': measure(sqlalchemy_sqlite),
    }
    print(f'pceleryd --concurrency 2, {os.cpu_count()} CPUs; '
          f'{ROUND_TRIPS} round trips, a burst of {BURST}')
    print_table(columns)
    print(f'(whole run {time.monotonic() - started:.0f} s)')


if __name__ == '__main__':
    main()
