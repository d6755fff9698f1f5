"""Throughput: bare Celery and myapp side by side, in one run.

For the same ``add`` task on the same broker and result backend, it
measures a plain ``Celery()`` app (:mod:`benchmarks.bare_app`, no Pyramid)
and myapp, interleaved (bare, myapp, bare, myapp...), and prints the
median of each measure over the rounds and the ratio myapp/bare:

* sends per second outside a transaction (``add.delay()``: pshell, beat);
* sends per second inside a transaction: myapp ``with tm:
  tasks.add.delay()`` (its job row commits with it), bare Celery a plain
  SQLAlchemy transaction inserting one row into a table of its own, then
  ``add.delay()`` after the commit: what a user writes by hand;
* worker drain rate (``-c 2``) of the queue those sends filled, and the
  CPU time it took, per task: the worker's processes, and on the servers'
  runs PostgreSQL, Redis and RabbitMQ (both drains are bound by the
  machine's cores, so this says where a side's time goes);
* ``add.delay().get()`` round trips, p50 and p99;
* ``POST /api/jobs`` requests per second, 4 keep-alive clients, against a
  real ``pserve`` (waitress), beside a plain view of the same app that
  inserts one row and sends ``add`` after commit (:mod:`.http_app`).

On the embedded default (filesystem broker, SQLite results and app
database), on Redis (broker and results) and on RabbitMQ (results in
Redis, so that only the broker differs from the Redis run); PostgreSQL is
the app database of the last two.  Every service is on 127.0.0.1.

Run from the repository root (about 6 minutes; ``--broker redis`` and
``--rounds 3`` run a part)::

    .venv/bin/python -m benchmarks.throughput

Each broker runs in a child process of its own (Celery and Pyramid keep
process-wide state), which starts the two workers (``pceleryd INI
--concurrency 2`` and ``celery -A benchmarks.bare_app worker -c 2``) and
later ``pserve``, stops each of them by pid, deletes its temporary
directory, flushes its Redis database (12, which must be empty when it
starts; ``--redis-db`` picks another), deletes its RabbitMQ queues and
drops its PostgreSQL database.  The exit status is non-zero only when a
run failed; timings are never judged.

``--profile N`` instead profiles N sends outside a transaction (Redis,
PostgreSQL, no worker) with cProfile and prints the top entries.
"""
import argparse
import cProfile
import datetime
import http.client
import io
import json
import os
import pstats
import signal
import socket
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.cpu import cpu_by_pid, family, named  # noqa: E402
from tests import support  # noqa: E402
from tests.support import Worker, run_command, write_ini  # noqa: E402

BROKERS = ('embedded', 'redis', 'rabbitmq')
#: Flushed at the end of a run, so it must be empty at its start (Redis's
#: databases 14 and 15 are the tests'); --redis-db picks another.
REDIS_DB = 12
AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672//'
POSTGRES_ADMIN_URL = 'postgresql+psycopg://postgres@127.0.0.1:5432/test'


def redis_url():
    return f'redis://127.0.0.1:6379/{REDIS_DB}'


def setup_of(broker):
    """(broker, result backend, app database) of a run, as write_ini takes
    them.  RabbitMQ keeps its results in Redis rather than rpc://: the two
    server runs then differ by the broker only."""
    return {
        'embedded': ('filesystem', 'sqlite', 'sqlite'),
        'redis': (redis_url(), redis_url(), 'postgresql'),
        'rabbitmq': (AMQP_URL, redis_url(), 'postgresql'),
    }[broker]


#: The command name of each service's processes (:func:`.cpu.named`).
SERVER_COMMANDS = {'postgresql': 'postgres', 'redis': 'redis-server',
                   'rabbitmq': 'beam.smp'}

NEEDS = {
    'embedded': (),
    'redis': ('redis', 'postgresql'),
    'rabbitmq': ('rabbitmq', 'redis', 'postgresql'),
}

ROUNDS = 5
SENDS = 1000           # per round, side and kind (outside, inside)
ROUND_TRIPS = {'embedded': 40, 'redis': 100, 'rabbitmq': 100}
HTTP_SECONDS = 2.0     # per round and endpoint
HTTP_CLIENTS = 4
RESULT_TIMEOUT = 60
CONTROL_TIMEOUT = 10

SIDES = ('bare', 'myapp')
MEASURES = {
    # name: (unit, higher is better, target)
    'sends outside a txn': ('/s', True, {'*': 0.8}),
    'sends inside a txn': ('/s', True, {'*': 0.8}),
    'drain, -c 2': ('tasks/s', True, {'*': 0.8}),
    'drain CPU/task, worker': ('us', False, {}),
    'drain CPU/task, servers': ('us', False, {}),
    'round trip p50': ('ms', False, {'redis': 1.5, 'embedded': '60 ms'}),
    'round trip p99': ('ms', False, {}),
    'POST /api/jobs (bare: plain view)': ('req/s', True, {'*': 0.8}),
}


class BenchError(Exception):
    """A run that failed: its message goes into the table."""


def log(message):
    print(f'[{time.strftime("%H:%M:%S")}] {message}', file=sys.stderr,
          flush=True)


# -- services ------------------------------------------------------------

def redis_client():
    import redis
    return redis.Redis.from_url(redis_url())


def claim_redis_db():
    """Refuse a Redis database that holds keys: another run may use it."""
    client = redis_client()
    try:
        keys = client.dbsize()
    finally:
        client.close()
    if keys:
        raise BenchError(f'Redis database {REDIS_DB} holds {keys} keys: '
                         'another run uses it; pass --redis-db N for an '
                         'empty one')


def flush_redis():
    client = redis_client()
    try:
        client.flushdb()
    finally:
        client.close()


def delete_rabbitmq_queues(names):
    from kombu import Connection
    with Connection(AMQP_URL, connect_timeout=5) as connection:
        channel = connection.default_channel
        for name in names:
            try:
                channel.queue_delete(name)
            except Exception as exc:  # already gone: nothing to delete
                log(f'rabbitmq: queue {name}: {exc}')
                channel = connection.channel()


def postgres_admin():
    from sqlalchemy import create_engine
    return create_engine(POSTGRES_ADMIN_URL, isolation_level='AUTOCOMMIT')


def create_postgres_database(name):
    from sqlalchemy import text
    engine = postgres_admin()
    try:
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return f'postgresql+psycopg://postgres@127.0.0.1:5432/{name}'


def drop_postgres_database(name):
    from sqlalchemy import text
    engine = postgres_admin()
    try:
        with engine.connect() as connection:
            connection.execute(
                text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


# -- one broker: the two sides -------------------------------------------

class Side:
    """One side of the comparison in this process: its Celery app, its
    ``add``, its worker's node name and queue, and how it sends."""

    def __init__(self, name, app, add, node, queue):
        self.name, self.app, self.add = name, app, add
        self.node, self.queue = node, queue
        self.pending = []  # sent, not yet drained
        self.worker_pid = None   # its worker's main process
        self.servers = ()   # the services of the run (NEEDS)

    def send_outside(self, i):
        return self.add.delay(i, i)

    def send_inside(self, i):
        raise NotImplementedError

    def consume(self, on):
        """Start or stop the worker's consumer of the queue; wait for it."""
        control = self.app.control
        command = control.add_consumer if on else control.cancel_consumer
        replies = command(self.queue, destination=[self.node], reply=True,
                          timeout=CONTROL_TIMEOUT)
        if not replies:
            raise BenchError(f'{self.name}: the worker did not answer '
                             f'{"add" if on else "cancel"}_consumer')


class BareSide(Side):
    def __init__(self, settings, database_url, node):
        from sqlalchemy import (Column, Integer, MetaData, Table,
                                create_engine)

        from benchmarks import bare_app
        from myapp.celery_integration.sqlite import tune_sqlite_engine

        bare_app.configure(settings)
        super().__init__('bare', bare_app.app, bare_app.add, node,
                         settings['task_default_queue'])
        # The same app database as myapp's, tuned the same way (SQLite:
        # WAL, busy timeout); a table of its own.
        self.engine = tune_sqlite_engine(create_engine(database_url))
        self.rows = Table('bench_plain_rows', MetaData(),
                          Column('id', Integer, primary_key=True),
                          Column('x', Integer, nullable=False),
                          Column('y', Integer, nullable=False))
        self.rows.metadata.create_all(self.engine)

    def send_inside(self, i):
        with self.engine.begin() as connection:
            connection.execute(self.rows.insert().values(x=i, y=i))
        return self.add.delay(i, i)

    def close(self):
        self.engine.dispose()


class MyappSide(Side):
    def __init__(self, ini, node, queue):
        from pyramid.paster import bootstrap

        # As pshell does: the app booted, its request pushed, request.tm.
        self.env = bootstrap(ini)
        from myapp import tasks
        from myapp.celery_integration import celery_app
        super().__init__('myapp', celery_app, tasks.add, node, queue)
        self.tm = self.env['request'].tm

    def send_inside(self, i):
        with self.tm:
            return self.add.delay(i, i)

    def close(self):
        from myapp.jobs import journal
        journal.flush()  # before its database is dropped
        self.env['closer']()
        factory = self.env['registry']['dbsession_factory']
        factory.kw['bind'].dispose()


def measure_sends(side, kind, count):
    send = side.send_outside if kind == 'outside' else side.send_inside
    started = time.perf_counter()
    results = [send(i) for i in range(count)]
    elapsed = time.perf_counter() - started
    side.pending.extend((result, 2 * i) for i, result in enumerate(results))
    return count / elapsed


def measure_drain(side):
    """The queue holds ``side.pending``; let the worker at it.  Tasks per
    second from the add_consumer command to the last result's
    ``date_done`` as the worker stored it (waiting here costs no time),
    and the CPU the worker and the servers spent, per task, in µs."""
    count = len(side.pending)
    before = cpu_by_pid([pid for pids in drain_processes(side).values()
                         for pid in pids])
    rate = drain_rate(side)
    spent = cpu_spent(before, side)
    log(f'  {side.name} drain, CPU a task: ' + ', '.join(
        f'{name} {seconds / count * 1e6:,.0f} us'
        for name, seconds in spent.items()))
    measured = {'drain, -c 2': rate, 'drain CPU/task, worker':
                (spent['worker main'] + spent['worker pool']) / count * 1e6}
    if side.servers:
        measured['drain CPU/task, servers'] = sum(
            spent[server] for server in side.servers) / count * 1e6
    return measured


def drain_rate(side):
    pending, side.pending = side.pending, []
    started = datetime.datetime.now(datetime.timezone.utc)
    side.consume(True)
    # Wait with little CPU (the workers have 2 cores to share with this
    # process): for the last one sent, then for the few still running.
    pending[-1][0].get(timeout=RESULT_TIMEOUT, interval=0.1)
    last = None
    for result, expected in pending:
        value = result.get(timeout=RESULT_TIMEOUT, interval=0.05)
        if value != expected:
            raise BenchError(f'{side.name}: add gave {value!r}')
        done = result.date_done
        if done.tzinfo is None:
            done = done.replace(tzinfo=datetime.timezone.utc)
        last = done if last is None else max(last, done)
    return len(pending) / (last - started).total_seconds()


def drain_processes(side):
    """{group: pids} whose CPU a drain counts: the side's worker (its
    main process, its pool) and each of the run's servers."""
    groups = {'worker main': [side.worker_pid],
              'worker pool': family(side.worker_pid)[1:]}
    for server in side.servers:
        groups[server] = named(SERVER_COMMANDS[server])
    return groups


def cpu_spent(before, side):
    """CPU seconds of each group since ``before`` ({pid: seconds}); a
    process started meanwhile (a server's new connection) counts whole."""
    spent = {}
    for group, pids in drain_processes(side).items():
        now = cpu_by_pid(pids)
        spent[group] = sum(seconds - before.get(pid, 0.0)
                           for pid, seconds in now.items())
    return spent


def measure_round_trips(side, count):
    """p50 and p99 of ``add.delay().get()``, in ms (consumer on)."""
    latencies = []
    for i in range(count):
        started = time.perf_counter()
        value = side.add.delay(i, 1).get(timeout=RESULT_TIMEOUT,
                                         interval=0.01)
        latencies.append((time.perf_counter() - started) * 1000)
        if value != i + 1:
            raise BenchError(f'{side.name}: add gave {value!r}')
    cuts = statistics.quantiles(latencies, n=100, method='inclusive')
    return statistics.median(latencies), cuts[98]


def http_load(port, path, seconds, clients=HTTP_CLIENTS):
    """Requests per second (202s) from ``clients`` keep-alive clients."""
    body = json.dumps({'task': 'myapp.tasks.add', 'args': [1, 2]}).encode()
    headers = {'Content-Type': 'application/json'}
    counts = [0] * clients
    errors = []
    clock = {}
    barrier = threading.Barrier(
        clients, action=lambda: clock.update(start=time.perf_counter()))

    def client(n):
        connection = http.client.HTTPConnection('127.0.0.1', port,
                                                timeout=30)
        try:
            connection.connect()
            barrier.wait()
            deadline = clock['start'] + seconds
            while time.perf_counter() < deadline and not errors:
                connection.request('POST', path, body, headers)
                response = connection.getresponse()
                text = response.read()
                if response.status == 202:
                    counts[n] += 1
                elif not 200 <= response.status < 300:
                    errors.append(f'POST {path}: {response.status} '
                                  f'{text[:200]!r}')
        except Exception as exc:
            errors.append(f'POST {path}: {type(exc).__name__}: {exc}')
            barrier.abort()
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(n,))
               for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise BenchError(errors[0])
    return sum(counts) / (time.perf_counter() - clock['start'])


def stop_all(processes, timeout=30):
    """Stop these Workers (tests.support) by pid, all at once."""
    started = [process for process in processes if process.process]
    for process in started:
        process.signal(signal.SIGTERM)
    for process in started:
        process.wait_stopped(timeout)


def show_log_tails(processes, lines=15):
    """What each process logged last: why a run failed."""
    for process in processes:
        try:
            tail = process.output().splitlines()[-lines:]
        except OSError:
            continue
        log(f'last lines of {" ".join(process.argv)[:80]}:\n  '
            + '\n  '.join(tail))


def error_lines(process):
    return [line for line in process.output().splitlines()
            if ' ERROR ' in line or 'Traceback' in line]


class BrokerRun:
    """Everything one broker's run starts, and its clean-up."""

    def __init__(self, broker, directory):
        self.broker = broker
        self.tag = uuid.uuid4().hex[:8]
        self.directory = directory
        self.database_name = None
        self.redis_claimed = False
        self.processes = []
        self.queues = {side: f'bench-{self.tag}-{side}' for side in SIDES}
        self.nodes = {side: f'{side}-{self.tag}@bench' for side in SIDES}

    def write_ini(self, side, broker, backend, database):
        folder = os.path.join(self.directory, side)
        os.makedirs(folder)
        # write_ini names the queue from this module attribute.
        support.RUN_QUEUE = self.queues[side]
        return write_ini(folder, broker=broker, backend=backend,
                         database=database, concurrency=2)

    def prepare(self):
        require_services(self.broker)
        broker, backend, database = setup_of(self.broker)
        if redis_url() in (broker, backend):
            claim_redis_db()
            self.redis_claimed = True
        if database == 'postgresql':
            self.database_name = f'myapp_bench_{self.tag}'
            database = create_postgres_database(self.database_name)
        self.myapp_ini = self.write_ini('myapp', broker, backend, database)
        done = run_command('initialize_myapp_db', self.myapp_ini)
        if done.returncode:
            raise BenchError(f'initialize_myapp_db: {done.stderr.strip()}')
        self.database_url = support.database_of(self.myapp_ini)
        # The bare app gets the Celery settings myapp reads from an ini of
        # the same broker and backend (JSON, result_extended, the
        # filesystem transport and its options...), all but one that is
        # about logging through the ini.
        from myapp.celery_integration.settings import load_celery_settings
        bare_ini = self.write_ini('bare', broker, backend, database)
        self.bare_ini = bare_ini
        self.bare_settings = load_celery_settings(bare_ini)
        self.bare_settings.pop('worker_hijack_root_logger')
        self.bare_settings.pop('beat_schedule_filename')
        make_local_folders(self.bare_settings)

    def start(self, process, timeout=90):
        self.processes.append(process)
        process.start(timeout=timeout)
        return process

    def start_workers(self):
        from benchmarks.bare_app import SETTINGS_VARIABLE
        env = dict(os.environ, PYTHONPATH=ROOT)
        self.bare_worker = self.start(Worker(
            self.bare_ini, command='celery', cwd=ROOT,
            env=dict(env, **{SETTINGS_VARIABLE:
                             json.dumps(self.bare_settings)}),
            argv=['-A', 'benchmarks.bare_app', 'worker', '-c', '2',
                  '-l', 'INFO', '-n', self.nodes['bare']]))
        self.myapp_worker = self.start(Worker(
            self.myapp_ini, '--concurrency', '2', '-n', self.nodes['myapp'],
            env=env, cwd=ROOT))

    def stop_processes(self):
        try:
            stop_all(self.processes)
        except Exception as exc:
            log(f'{self.broker}: stopping a process: {exc}')
            for process in self.processes:
                if process.process is not None:
                    process.process.kill()

    def clean_up(self):
        """Undo what the run did; each step even if another one fails."""
        self.stop_processes()
        steps = []
        if setup_of(self.broker)[0] == AMQP_URL:
            steps.append(lambda: delete_rabbitmq_queues(self.queues.values()))
        if self.redis_claimed:
            steps.append(flush_redis)
        if self.database_name:
            steps.append(lambda: drop_postgres_database(self.database_name))
        run_steps(self.broker, steps)


def require_services(broker):
    """Refuse to run ``broker``'s setup when a server it needs is away."""
    for service in NEEDS[broker]:
        if not support.service_available(service):
            host, port = support.SERVICES[service]
            raise BenchError(f'{service} is not reachable on {host}:{port}')


def run_steps(broker, steps):
    """Run each clean-up step, even if another one fails."""
    for step in steps:
        try:
            step()
        except Exception as exc:
            log(f'{broker}: clean-up: {type(exc).__name__}: {exc}')


def make_local_folders(settings):
    """What myapp's configure_celery creates for the embedded setup."""
    options = settings.get('broker_transport_options') or {}
    for key in ('data_folder_in', 'data_folder_out', 'processed_folder',
                'control_folder'):
        if options.get(key):
            os.makedirs(options[key], exist_ok=True)
    backend = settings.get('result_backend') or ''
    if backend.startswith('db+sqlite:///'):
        os.makedirs(os.path.dirname(backend[len('db+sqlite:///'):]),
                    exist_ok=True)


def run_broker(broker, rounds):
    """Measure one broker; return {measure: {side: [value per round]}}."""
    values = {measure: {side: [] for side in SIDES} for measure in MEASURES}
    with tempfile.TemporaryDirectory(prefix='myapp-throughput-') as tmp:
        run = BrokerRun(broker, tmp)
        sides = {}
        try:
            log(f'{broker}: preparing')
            run.prepare()
            log(f'{broker}: starting the workers')
            run.start_workers()
            sides['bare'] = BareSide(run.bare_settings, run.database_url,
                                     run.nodes['bare'])
            sides['myapp'] = MyappSide(run.myapp_ini, run.nodes['myapp'],
                                       run.queues['myapp'])
            for name, worker in (('bare', run.bare_worker),
                                 ('myapp', run.myapp_worker)):
                sides[name].worker_pid = worker.process.pid
                sides[name].servers = NEEDS[broker]
            for side in sides.values():   # connections, tables, imports
                for i in range(5):
                    for send in (side.send_outside, side.send_inside):
                        send(i).get(timeout=RESULT_TIMEOUT, interval=0.01)
                side.consume(False)
            steps = round_steps(broker)
            for number in range(1, rounds + 1):
                for step in steps:
                    for name in SIDES:
                        started = time.monotonic()
                        measured = step(sides[name])
                        for measure, value in measured.items():
                            values[measure][name].append(value)
                        log(f'{broker} round {number}/{rounds} {name:5}: '
                            + ', '.join(f'{measure} {number_text(value)}'
                                        for measure, value in
                                        measured.items())
                            + f' ({time.monotonic() - started:.1f} s)')
            workers = {'bare': run.bare_worker, 'myapp': run.myapp_worker}
            stop_all(workers.values())
            for name, worker in workers.items():
                errors = error_lines(worker)
                if errors:
                    raise BenchError(f'{name} worker logged: {errors[0]}')
            measure_http(run, rounds, values['POST /api/jobs (bare: plain '
                                             'view)'])
        except Exception:
            show_log_tails(run.processes)
            raise
        finally:
            for side in sides.values():
                side.close()
            run.clean_up()
    return values


def round_steps(broker):
    """A round's measurements, each run on one side and then the other."""
    trips = ROUND_TRIPS[broker]

    def round_trips(side):
        p50, p99 = measure_round_trips(side, trips)
        side.consume(False)   # the next round's sends wait in the queue
        return {'round trip p50': p50, 'round trip p99': p99}

    return [
        lambda side: {'sends outside a txn':
                      measure_sends(side, 'outside', SENDS)},
        lambda side: {'sends inside a txn':
                      measure_sends(side, 'inside', SENDS)},
        measure_drain,
        round_trips,
    ]


def measure_http(run, rounds, values):
    """pserve on myapp's ini with http_app's extra view; no worker (the
    messages wait in the queue, which clean-up deletes)."""
    port = free_port()
    with open(run.myapp_ini) as handle:
        text = handle.read()
    text = text.replace('use = egg:myapp',
                        'use = call:benchmarks.http_app:main')
    text += (f'\n[server:main]\nuse = egg:waitress#main\n'
             f'listen = 127.0.0.1:{port}\n')
    http_ini = os.path.join(os.path.dirname(run.myapp_ini), 'http.ini')
    with open(http_ini, 'w') as handle:
        handle.write(text)
    log(f'{run.broker}: starting pserve on 127.0.0.1:{port}')
    server = run.start(Worker(http_ini, command='pserve', argv=[http_ini],
                              ready_text='Serving on', cwd=ROOT,
                              env=dict(os.environ, PYTHONPATH=ROOT)))
    paths = {'bare': '/bench/plain', 'myapp': '/api/jobs'}
    for path in paths.values():
        http_load(port, path, 0.5)  # warm: connections, first queries
    for number in range(1, rounds + 1):
        for side in SIDES:
            values[side].append(http_load(port, paths[side], HTTP_SECONDS))
            log(f'{run.broker} HTTP round {number}/{rounds} {side:5}: '
                f'{paths[side]} {number_text(values[side][-1])} req/s')
    server.stop()
    errors = error_lines(server)
    if errors:
        raise BenchError(f'pserve logged: {errors[0]}')


# -- the table -------------------------------------------------------------

def target_of(measure, broker):
    targets = MEASURES[measure][2]
    return targets.get(broker, targets.get('*'))


def judged(measure, broker, bare, myapp):
    """(target text, ratio, met) of one row; met is None without target."""
    unit, higher, _ = MEASURES[measure]
    target = target_of(measure, broker)
    ratio = myapp / bare if bare else float('nan')
    if target is None:
        return '', ratio, None
    if isinstance(target, str):   # an absolute bound, e.g. '60 ms'
        return f'<= {target}', ratio, myapp <= float(target.split()[0])
    if higher:
        return f'>= {target}x', ratio, ratio >= target
    return f'<= {target}x', ratio, ratio <= target


def number_text(value):
    return f'{value:,.1f}' if value < 100 else f'{value:,.0f}'


#: What each run's name stands for, under a table.
SETUPS = ('embedded: filesystem broker, SQLite results and app database; '
          'redis: Redis broker and\nresults; rabbitmq: RabbitMQ broker, '
          'Redis results; PostgreSQL app database for both.')


def print_rows(header, results, lines_of):
    """A table: ``header``, then each broker's lines (``lines_of(broker,
    result)``), or the error that ended its run."""
    print(header)
    print('-' * len(header))
    for broker, result in results.items():
        if 'error' in result:
            print(f'{broker:9} error: {result["error"]}')
            continue
        for line in lines_of(broker, result):
            print(line)


def print_table(results, rounds):
    print(f'bare Celery vs myapp, medians of {rounds} interleaved rounds; '
          f'{os.cpu_count()} CPUs, prefork -c 2; ratio = myapp / bare')
    print_rows(f'{"broker":9} {"measure":34} {"unit":8} {"bare":>9} '
               f'{"myapp":>9} {"ratio":>7} {"target":>9} {"met":>4}',
               results, measure_lines)
    print(SETUPS)


def measure_lines(broker, result):
    for measure, sides in result['values'].items():
        if not sides['bare'] or not sides['myapp']:
            continue
        bare = statistics.median(sides['bare'])
        myapp = statistics.median(sides['myapp'])
        target, ratio, met = judged(measure, broker, bare, myapp)
        yield (f'{broker:9} {measure:34} {MEASURES[measure][0]:8} '
               f'{number_text(bare):>9} {number_text(myapp):>9} '
               f'{ratio:>6.2f}x {target:>9} '
               f'{"" if met is None else "yes" if met else "no":>4}')


# -- profile ------------------------------------------------------------------

def profile_sends(count):
    """cProfile of ``count`` sends outside a transaction, Redis broker and
    results, PostgreSQL app database, no worker running."""
    with tempfile.TemporaryDirectory(prefix='myapp-throughput-') as tmp:
        run = BrokerRun('redis', tmp)
        side = None
        try:
            run.prepare()
            side = MyappSide(run.myapp_ini, run.nodes['myapp'],
                             run.queues['myapp'])
            for i in range(20):
                side.send_outside(i)
            profiler = cProfile.Profile()
            started = time.perf_counter()
            profiler.enable()
            for i in range(count):
                side.send_outside(i)
            profiler.disable()
            elapsed = time.perf_counter() - started
        finally:
            if side is not None:
                side.close()
            run.clean_up()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats('cumulative').print_stats(25)
    print(f'{count} sends outside a transaction (myapp, Redis, PostgreSQL) '
          f'under cProfile: {elapsed:.2f} s, {count / elapsed:.0f}/s')
    text = out.getvalue()
    print(text[text.index('   ncalls'):]
          .replace(sysconfig.get_paths()['purelib'] + '/', '')
          .replace(ROOT + '/', ''))


# -- main ------------------------------------------------------------------

def child(broker, rounds, out):
    """One broker's run, in its own process; results as JSON into ``out``."""
    run_as_child(broker, lambda: {'values': run_broker(broker, rounds)}, out)


def run_as_child(broker, run, out):
    """The body of a child process (:func:`run_child`): ``run()``'s result,
    or the error that ended it, as JSON into ``out``; SIGTERM and SIGINT
    stop it (``run`` cleans up on KeyboardInterrupt)."""
    def stop(signum, frame):
        # Once: the clean-up that follows must not be interrupted in turn.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        result = run()
    except KeyboardInterrupt:
        # run has cleaned up; skip the finalizers of half-read results,
        # which only complain at exit.
        log(f'{broker}: interrupted')
        sys.stderr.flush()
        os._exit(130)
    except Exception as exc:  # BenchError, a worker that did not start...
        first = (str(exc).strip().splitlines() or [''])[0]
        result = {'error': f'{type(exc).__name__}: {first}'[:300]}
        log(f'{broker}: failed: {type(exc).__name__}: {exc}')
    with open(out, 'w') as handle:
        json.dump(result, handle)


def run_in_child(broker, rounds):
    return run_child('benchmarks.throughput', '--child', broker, '--rounds',
                     str(rounds), '--redis-db', str(REDIS_DB))


def run_child(module, *args):
    """Run ``python -m module ARGS --out FILE`` (Celery and Pyramid keep
    process-wide state, so each run is a process of its own); return the
    JSON it wrote there, or ``{'error': ...}``."""
    with tempfile.NamedTemporaryFile(prefix='myapp-benchmark-',
                                     suffix='.json', delete=False) as handle:
        out = handle.name
    process = subprocess.Popen(
        [sys.executable, '-m', module, *args, '--out', out], cwd=ROOT)
    try:
        process.wait()
        with open(out) as handle:
            text = handle.read()
        if not text:
            return {'error': f'the run exited with {process.returncode}'}
        return json.loads(text)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        os.unlink(out)


def main(argv=None):
    global REDIS_DB
    parser = argparse.ArgumentParser(
        prog='python -m benchmarks.throughput',
        description='bare Celery vs myapp, side by side')
    parser.add_argument('--broker', choices=BROKERS, action='append',
                        help='run only this broker (may be repeated)')
    parser.add_argument('--rounds', type=int, default=ROUNDS)
    parser.add_argument('--redis-db', type=int, default=REDIS_DB,
                        help='an empty Redis database, flushed at the end '
                        f'(default {REDIS_DB})')
    parser.add_argument('--profile', type=int, metavar='N',
                        help='profile N sends outside a transaction instead')
    parser.add_argument('--child', choices=BROKERS, help=argparse.SUPPRESS)
    parser.add_argument('--out', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    REDIS_DB = args.redis_db
    if args.child:
        child(args.child, args.rounds, args.out)
        return 0
    if args.profile:
        profile_sends(args.profile)
        return 0
    results = run_each(args.broker or BROKERS,
                       lambda broker: run_in_child(broker, args.rounds),
                       lambda results: print_table(results, args.rounds))
    if results is None:
        return 130
    return 1 if any('error' in result for result in results.values()) else 0


def run_each(brokers, run, show):
    """Each broker's run in turn, then ``show(results)`` and the time it
    all took; the results, or None when interrupted."""
    # SIGTERM as Ctrl-C: the child running stops and cleans up.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.monotonic()
    results = {}
    try:
        for broker in brokers:
            results[broker] = run(broker)
    except KeyboardInterrupt:
        print('interrupted; the runs have cleaned up', file=sys.stderr)
        return None
    show(results)
    print(f'(whole run {time.monotonic() - started:.0f} s)')
    return results


if __name__ == '__main__':
    sys.exit(main())
