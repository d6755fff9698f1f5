"""The SIGKILL fault drill: jobs sent, workers killed outright, and then
every job must have ended, once.

For each broker it writes an ini in a temporary directory (acks late,
``task_reject_on_worker_lost``, prefetch 1, ``--concurrency 2``,
``jobs.lease_seconds = 5`` where the default is 30 s,
``jobs.resend_unstarted_after = 60`` where it is 300 s, a queue of its own),
creates the schema, and from this process, booted as ``pshell`` boots the
app, sends ``--jobs`` N ``myapp.tasks.record_sum([i])`` (each run writes
one ``calculations`` row with operands ``[i]``: a job that ran twice
leaves two) with a ``myapp.tasks.slow_add(i, 1, seconds=1)`` after every
20th, so that kills land on runs in progress.  Then it starts a real
``pceleryd INI`` and, ``--interval`` seconds after it is ready, SIGKILLs
it and its pool processes at once (``tests.support.Worker.kill_outright``,
a machine lost) and starts another, ``--kills`` times; the last one runs
until every job has ended or ``--deadline`` seconds have passed since the
first send.  Nothing is done by hand in between.

Per broker and task it reports the jobs sent, their final states from the
``jobs`` table, those still unfinished after the deadline (stuck: started,
not ended), lost (no row, or a row never started), duplicated (an operand
with two ``calculations`` rows; for ``slow_add``, which leaves nothing,
two "succeeded" lines in the workers' logs), and the sum of
``jobs.lost_runs``; per broker the kills (and how many runs were in
progress at each), the copies a worker refused to run twice ("not run:
the job is ..."), and the wall time from the first send to the last job's
end.  It exits non-zero when any job did not end in SUCCESS exactly once,
or a run failed.

Three runs: **embedded** (filesystem broker, SQLite results and app
database), **redis** (Redis broker and results in database 11, which must
be empty and is flushed at the end, PostgreSQL app database) and
**rabbitmq** (RabbitMQ broker, Redis results, PostgreSQL).  The PostgreSQL
database (``myapp_drill_TAG``) is created for the run and dropped after
it; the RabbitMQ queue is deleted.  Everything is on 127.0.0.1.  Each run
is a child process of its own (Celery and Pyramid keep process-wide
state).

Run from the repository root (about 4 minutes for the three)::

    .venv/bin/python -m benchmarks.sigkill_drill
    .venv/bin/python -m benchmarks.sigkill_drill --broker redis --jobs 200

``--keep`` keeps the temporary directory (inis, worker logs, SQLite) and
the PostgreSQL database, and prints where they are.
"""
import argparse
import collections
import json
import os
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.throughput import (  # noqa: E402
    AMQP_URL, SETUPS, BenchError, create_postgres_database,
    delete_rabbitmq_queues, drop_postgres_database, log, print_rows,
    require_services, run_as_child, run_child, run_each, run_steps)
from tests import support  # noqa: E402
from tests.support import Worker, write_ini  # noqa: E402

BROKERS = ('embedded', 'redis', 'rabbitmq')
#: Broker and results of the server runs; must be empty, flushed after.
REDIS_DB = 11
JOBS = 1000
KILLS = 4
#: Seconds a worker runs, once ready, before it is killed.
INTERVAL = 4.0
#: Seconds from the first send by which every job must have ended.
DEADLINE = 300
#: A slow_add(seconds=1) after every SLOW_EVERY-th record_sum.
SLOW_EVERY = 20
LEASE_SECONDS = 5
DEFAULT_LEASE_SECONDS = 30
#: myapp's Redis visibility timeout (timeouts.REDIS_VISIBILITY_TIMEOUT):
#: after the last job ends, the last worker runs on until the messages the
#: killed workers held have come back at least once (and must not run).
REDIS_VISIBILITY = 45
#: jobs.resend_unstarted_after: a message lost before any run (kombu's Redis
#: transport, killed between taking it and recording it unacknowledged) is
#: sent again after this; above REDIS_VISIBILITY, so that the messages the
#: killed workers held come back first.
RESEND_UNSTARTED_AFTER = 60
#: Seconds the last worker runs on after the last job ended (at least).
SETTLE = 10
WORKER_START_TIMEOUT = 90
CELERY = """\
task_acks_late = true
task_reject_on_worker_lost = true
worker_prefetch_multiplier = 1
"""
TASKS = ('record_sum', 'slow_add')
FINISHED = ('SUCCESS', 'FAILURE', 'REVOKED')
RUNNING = ('STARTED', 'PROGRESS')


def redis_url():
    return f'redis://127.0.0.1:6379/{REDIS_DB}'


def setup_of(broker):
    """(broker, result backend, app database) as write_ini takes them."""
    return {
        'embedded': ('filesystem', 'sqlite', 'sqlite'),
        'redis': (redis_url(), redis_url(), 'postgresql'),
        'rabbitmq': (AMQP_URL, redis_url(), 'postgresql'),
    }[broker]


def redis_call(method):
    import redis
    client = redis.Redis.from_url(redis_url(), socket_timeout=10)
    try:
        return getattr(client, method)()
    finally:
        client.close()


def processes_of(ini):
    """Pids of the processes whose command line names ``ini``."""
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/cmdline', 'rb') as handle:
                argv = handle.read().split(b'\0')
        except OSError:
            continue
        if ini.encode() in argv:
            found.append(int(entry))
    return found


class Drill:
    """One broker's drill: what it starts, what it sends, and its clean-up."""

    def __init__(self, broker, directory, options):
        self.broker, self.directory, self.options = broker, directory, options
        self.tag = uuid.uuid4().hex[:8]
        self.queue = f'drill-{self.tag}'
        self.database_name = None
        self.redis_claimed = False
        self.env = None
        self.workers = []
        self.sent = {}        # job id: (task, i)
        self.kills = []       # {'pid', 'running', 'finished'} per kill

    # -- set-up and clean-up ----------------------------------------------

    def prepare(self):
        require_services(self.broker)
        broker, backend, database = setup_of(self.broker)
        if redis_url() in (broker, backend):
            keys = redis_call('dbsize')
            if keys:
                raise BenchError(f'Redis database {REDIS_DB} holds {keys} '
                                 'keys: another run uses it')
            self.redis_claimed = True
        if database == 'postgresql':
            self.database_name = f'myapp_drill_{self.tag}'
            database = create_postgres_database(self.database_name)
        support.RUN_QUEUE = self.queue  # write_ini's and Worker's names
        self.ini = write_ini(
            self.directory, broker=broker, backend=backend,
            database=database, concurrency=2, celery=CELERY,
            app=f'jobs.lease_seconds = {LEASE_SECONDS}\n'
                f'jobs.resend_unstarted_after = {RESEND_UNSTARTED_AFTER}')
        support.run_initialize_db(self.ini)

    def boot(self):
        """The app in this process, as pshell boots it."""
        from pyramid.paster import bootstrap
        self.env = bootstrap(self.ini)
        self.session_factory = self.env['registry']['dbsession_factory']

    def clean_up(self):
        for worker in self.workers:
            if worker.process is not None and worker.process.poll() is None:
                worker.kill_outright()
        if self.env is not None:
            self.env['closer']()
            self.session_factory.kw['bind'].dispose()
        steps = []
        if setup_of(self.broker)[0] == AMQP_URL:
            steps.append(lambda: delete_rabbitmq_queues([self.queue]))
        if self.redis_claimed:
            steps.append(lambda: redis_call('flushdb'))
        if self.database_name and not self.options.keep:
            steps.append(lambda: drop_postgres_database(self.database_name))
        run_steps(self.broker, steps)

    # -- the drill -----------------------------------------------------------

    def send(self):
        from myapp import tasks
        from myapp.jobs import journal
        for i in range(self.options.jobs):
            self.sent[tasks.record_sum.delay([i]).id] = ('record_sum', i)
            if i % SLOW_EVERY == SLOW_EVERY - 1:
                job = tasks.slow_add.delay(i, 1, seconds=1)
                self.sent[job.id] = ('slow_add', i)
        journal.flush()  # the rows of sends outside a transaction

    def start_worker(self):
        worker = Worker(self.ini, '--loglevel', 'INFO', cwd=self.directory)
        self.workers.append(worker)
        try:
            worker.start(timeout=WORKER_START_TIMEOUT)
        except AssertionError as exc:
            raise BenchError(f'a worker did not start: '
                             f'{str(exc).splitlines()[0]}') from None
        return worker

    def states(self):
        from sqlalchemy import func, select

        from myapp.models import Job
        with self.session_factory() as dbsession:
            return dict(dbsession.execute(
                select(Job.state, func.count()).group_by(Job.state)).all())

    def running_on(self, worker):
        """How many jobs the worker's row says it runs (not counting the
        dead runs of workers killed before, until their leases expire)."""
        from sqlalchemy import func, select

        from myapp.models import Job
        name = worker.argv[worker.argv.index('--hostname') + 1]
        prefix = name.split('@')[0] + '@'
        with self.session_factory() as dbsession:
            return dbsession.scalar(
                select(func.count()).select_from(Job).where(
                    Job.state.in_(RUNNING), Job.worker.startswith(prefix)))

    def finished(self, states):
        return sum(states.get(state, 0) for state in FINISHED)

    def run(self):
        options = self.options
        started = time.monotonic()
        self.send()
        log(f'{self.broker}: sent {len(self.sent)} jobs in '
            f'{time.monotonic() - started:.1f} s')
        for number in range(1, options.kills + 1):
            worker = self.start_worker()
            time.sleep(options.interval)
            states = self.states()
            running = self.running_on(worker)
            pid = worker.process.pid
            worker.kill_outright()
            waited = time.monotonic() + 5
            while processes_of(self.ini) and time.monotonic() < waited:
                time.sleep(0.1)
            left = processes_of(self.ini)
            if left:
                raise BenchError(f'processes of the killed worker {pid} '
                                 f'still run: {left}')
            self.kills.append({'pid': pid, 'running': running,
                               'finished': self.finished(states)})
            log(f'{self.broker}: kill {number}/{options.kills}: worker {pid} '
                f'and its pool killed with {running} runs in progress; '
                f'{self.finished(states)}/{len(self.sent)} jobs ended')
        last_kill = time.monotonic()
        last = self.start_worker()
        deadline = started + options.deadline
        states = self.states()
        while self.finished(states) < len(self.sent) \
                and time.monotonic() < deadline:
            if last.process.poll() is not None:
                raise BenchError(f'the last worker exited with '
                                 f'{last.process.returncode}')
            time.sleep(0.5)
            states = self.states()
        wall = time.monotonic() - started
        log(f'{self.broker}: {self.finished(states)}/{len(self.sent)} jobs '
            f'ended after {wall:.1f} s: {states}')
        # Run on a while: copies of the killed workers' messages that come
        # back late (Redis: after its visibility timeout) must not run.
        settle_until = time.monotonic() + options.settle
        if self.broker == 'redis' and options.kills:
            settle_until = max(settle_until,
                               last_kill + REDIS_VISIBILITY + 10)
        if self.finished(states) == len(self.sent):
            log(f'{self.broker}: the last worker runs on '
                f'{max(0, settle_until - time.monotonic()):.0f} s')
            time.sleep(max(0, settle_until - time.monotonic()))
        last.stop()
        return self.report(wall)

    # -- the report -------------------------------------------------------

    def logs(self):
        return {os.path.basename(worker.log_path): worker.output()
                for worker in self.workers if worker.process is not None}

    def report(self, wall):
        from sqlalchemy import select

        from myapp.models import Calculation, Job
        with self.session_factory() as dbsession:
            rows = {job.id: job for job in dbsession.scalars(select(Job))}
            dbsession.expunge_all()
            calculations = collections.Counter(
                json.dumps(operands) for operands in
                dbsession.scalars(select(Calculation.operands)))
        logs = self.logs()
        succeeded = collections.Counter()
        skipped = 0
        error_lines = []
        for name, text in logs.items():
            for line in text.splitlines():
                if ' succeeded in ' in line and '[' in line:
                    succeeded[line.split('[', 2)[2].split(']')[0]] += 1
                if ': not run: the job is ' in line:
                    skipped += 1
                if ' ERROR ' in line or ' CRITICAL ' in line:
                    error_lines.append(f'{name}: {line}')
        counts = {task: collections.Counter() for task in TASKS}
        problems = []
        for job_id, (task, i) in self.sent.items():
            count = counts[task]
            count['sent'] += 1
            job = rows.get(job_id)
            if job is None:
                count['lost'] += 1
                problems.append((job_id, task, i, 'lost: no row'))
                continue
            count['lost_runs'] += job.lost_runs
            if job.state in FINISHED:
                count[job.state] += 1
            elif job.started_at is None:
                count['lost'] += 1
                problems.append((job_id, task, i, f'lost: {job.state}, '
                                 'never started'))
            else:
                count['stuck'] += 1
                problems.append((job_id, task, i, f'stuck: {job.state}'))
            if task == 'record_sum':
                runs = calculations.get(json.dumps([i]), 0)
                expected = {'result': i}
            else:
                runs = succeeded.get(job_id, 0)
                expected = i + 1
            if runs > 1:
                count['duplicated'] += 1
                problems.append((job_id, task, i, f'duplicated: {runs} '
                                 + ('calculations rows' if task ==
                                    'record_sum' else '"succeeded" lines')))
            if job.state == 'SUCCESS':
                result = job.result
                if task == 'record_sum':
                    result = {'result': (result or {}).get('result')}
                if result != expected or (task == 'record_sum' and not runs):
                    count['wrong'] += 1
                    problems.append((job_id, task, i, f'SUCCESS with '
                                     f'result {job.result!r} and {runs} '
                                     'calculations rows'))
            elif job.state in FINISHED:
                problems.append((job_id, task, i, f'{job.state}: '
                                 f'{job.error_type}: {job.error_message}'))
        unexpected = sorted(set(rows) - set(self.sent))
        for job_id in unexpected:
            problems.append((job_id, rows[job_id].task_name, None,
                             f'a row nobody sent ({rows[job_id].state}, '
                             f'origin {rows[job_id].origin})'))
        for job_id, task, i, what in problems:
            self.describe(job_id, task, i, what, rows.get(job_id), logs)
        if error_lines:
            log(f'{self.broker}: the workers logged {len(error_lines)} '
                'ERROR lines, the first ones:')
            for line in error_lines[:10]:
                log(f'    {line}')
        return {'counts': {task: dict(count)
                           for task, count in counts.items()},
                'kills': self.kills, 'wall': wall, 'skipped': skipped,
                'error_lines': len(error_lines),
                'unexpected': len(unexpected),
                'problems': len(problems)}

    def describe(self, job_id, task, i, what, job, logs):
        """Everything known about a job that did not hold, to stderr."""
        log(f'{self.broker}: job {job_id} ({task} {i}): {what}')
        if job is not None:
            columns = ('state', 'worker', 'lost_runs', 'retries', 'sent_at',
                       'created_at', 'started_at', 'finished_at',
                       'lease_expires_at', 'error_type', 'error_message')
            log('    row: ' + ', '.join(f'{name}={getattr(job, name)!s}'
                                        for name in columns))
        seen = False
        for name, text in logs.items():
            for line in text.splitlines():
                if job_id in line:
                    seen = True
                    log(f'    {name}: {line[:300]}')
        if not seen:
            log('    no worker logged it')
        try:
            log(f'    its message now: {self.message_of(job_id)}')
        except Exception as exc:
            log(f'    its message: not looked for ({type(exc).__name__}: '
                f'{exc})')

    def message_of(self, job_id):
        """Where the broker holds the job's message now, if anywhere (the
        last worker has stopped): what tells a message the broker lost
        from one nobody consumed."""
        needle = job_id.encode()
        if self.broker == 'redis':
            import redis
            client = redis.Redis.from_url(redis_url(), socket_timeout=10)
            try:
                found = []
                for key in client.scan_iter(count=1000):
                    kind = client.type(key)
                    if kind == b'list':
                        values = client.lrange(key, 0, -1)
                    elif kind == b'hash':
                        values = client.hvals(key)
                    else:
                        continue
                    found += [f'{kind.decode()} {key.decode()}'
                              for value in values if needle in value]
                return ', '.join(found) or (
                    'in no Redis list or hash (not in the queue, not in '
                    'the unacked hash)')
            finally:
                client.close()
        if self.broker == 'embedded':
            found = []
            for folder, _, names in os.walk(os.path.join(self.directory,
                                                         'var', 'broker')):
                for name in names:
                    path = os.path.join(folder, name)
                    with open(path, 'rb') as handle:
                        if needle in handle.read():
                            found.append(os.path.relpath(path,
                                                         self.directory))
            return ', '.join(found) or 'in no file of var/broker'
        from kombu import Connection
        with Connection(AMQP_URL, connect_timeout=5) as connection:
            _, messages, consumers = connection.default_channel.queue_declare(
                self.queue, passive=True)
        return (f'not looked for in RabbitMQ; its queue holds {messages} '
                f'messages, {consumers} consumers')


def held(result):
    """Every job sent ended in SUCCESS, once, and nothing else went wrong."""
    if 'error' in result:
        return False
    for count in result['counts'].values():
        if count.get('SUCCESS', 0) != count['sent'] or any(
                count.get(key) for key in ('lost', 'stuck', 'duplicated',
                                           'wrong')):
            return False
    return not result['unexpected'] and not result['problems']


def run_broker(broker, options):
    with tempfile.TemporaryDirectory(prefix='myapp-drill-') as tmp:
        directory = tmp
        if options.keep:
            directory = tempfile.mkdtemp(prefix='myapp-drill-kept-')
        drill = Drill(broker, directory, options)
        try:
            log(f'{broker}: preparing')
            drill.prepare()
            drill.boot()
            return drill.run()
        finally:
            drill.clean_up()
            if options.keep:
                log(f'{broker}: kept {directory}'
                    + (f' and the PostgreSQL database {drill.database_name}'
                       if drill.database_name else ''))


# -- the table ---------------------------------------------------------------

def print_table(results, options):
    slow = options.jobs // SLOW_EVERY
    print(f'SIGKILL drill: {options.jobs} record_sum + {slow} '
          f'slow_add(seconds=1) per broker; pceleryd -c 2, acks late, '
          f'reject on worker lost, prefetch 1;\n'
          f'{options.kills} kills of the whole worker (SIGKILL, main and '
          f'pool processes), each {options.interval:g} s after it was '
          f'ready; jobs.lease_seconds = {LEASE_SECONDS} '
          f'(default {DEFAULT_LEASE_SECONDS} s), '
          f'jobs.resend_unstarted_after = {RESEND_UNSTARTED_AFTER}; deadline '
          f'{options.deadline} s; {os.cpu_count()} CPUs')
    print_rows(f'{"broker":9} {"task":10} {"sent":>5} {"SUCCESS":>7} '
               f'{"FAILURE":>7} {"stuck":>5} {"lost":>4} {"dup":>4} '
               f'{"lost_runs":>9}  {"kills (runs hit)":16} {"skipped":>7} '
               f'{"wall s":>6}  held', results, task_lines)
    print('stuck: started, not ended by the deadline; lost: no row, or never '
          'started; dup: ran twice\n(two calculations rows; slow_add: two '
          '"succeeded" log lines); runs hit: runs in progress at\neach kill; '
          'skipped: copies a worker refused to run ("not run: the job is '
          '..."); wall: first send\nto last end.  ' + SETUPS)


def task_lines(broker, result):
    for n, task in enumerate(TASKS):
        count = result['counts'][task]
        line = (f'{broker:9} {task:10} {count.get("sent", 0):>5} '
                f'{count.get("SUCCESS", 0):>7} '
                f'{count.get("FAILURE", 0):>7} '
                f'{count.get("stuck", 0):>5} {count.get("lost", 0):>4} '
                f'{count.get("duplicated", 0):>4} '
                f'{count.get("lost_runs", 0):>9}')
        if n == 0:
            hit = '+'.join(str(kill['running'])
                           for kill in result['kills'])
            kills = f'{len(result["kills"])} ({hit or "-"})'
            line += (f'  {kills:16} {result["skipped"]:>7} '
                     f'{result["wall"]:>6.1f}  '
                     f'{"yes" if held(result) else "NO"}')
        yield line


# -- main ----------------------------------------------------------------

def child(broker, options):
    run_as_child(broker, lambda: run_broker(broker, options), options.out)


def run_in_child(broker, options):
    args = ['--child', broker, '--jobs', str(options.jobs), '--kills',
            str(options.kills), '--interval', str(options.interval),
            '--deadline', str(options.deadline), '--settle',
            str(options.settle)]
    if options.keep:
        args.append('--keep')
    return run_child('benchmarks.sigkill_drill', *args)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m benchmarks.sigkill_drill',
        description='jobs sent, workers SIGKILLed: every job must end once')
    parser.add_argument('--broker', choices=BROKERS, action='append',
                        help='run only this broker (may be repeated)')
    parser.add_argument('--jobs', type=int, default=JOBS,
                        help=f'record_sum jobs (default {JOBS}), plus a '
                        f'slow_add after every {SLOW_EVERY}th')
    parser.add_argument('--kills', type=int, default=KILLS,
                        help=f'workers killed (default {KILLS})')
    parser.add_argument('--interval', type=float, default=INTERVAL,
                        help='seconds each worker runs before its kill '
                        f'(default {INTERVAL:g})')
    parser.add_argument('--deadline', type=float, default=DEADLINE,
                        help='seconds from the first send for every job to '
                        f'end (default {DEADLINE})')
    parser.add_argument('--settle', type=float, default=SETTLE,
                        help='seconds the last worker runs on after the '
                        f'last job ended (default {SETTLE}; on Redis until '
                        f'{REDIS_VISIBILITY + 10} s after the last kill)')
    parser.add_argument('--keep', action='store_true',
                        help='keep the temporary directory and the '
                        'PostgreSQL database')
    parser.add_argument('--child', choices=BROKERS, help=argparse.SUPPRESS)
    parser.add_argument('--out', help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.child:
        child(options.child, options)
        return 0
    results = run_each(options.broker or BROKERS,
                       lambda broker: run_in_child(broker, options),
                       lambda results: print_table(results, options))
    if results is None:
        return 130
    return 0 if all(held(result) for result in results.values()) else 1


if __name__ == '__main__':
    sys.exit(main())
