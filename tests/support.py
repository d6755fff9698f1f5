"""Test helpers: ini files for each backend, databases migrated in this
process, real worker processes, services.

Service-backed tests skip with a reason when the service is not reachable on
localhost, unless ``MYAPP_REQUIRE_SERVICES=1`` (set by ``.ci/run``), which
turns that skip into a failure.

``MYAPP_FAST_LANE=1`` (set by ``make test-fast``) makes a test that starts a
process or needs a service fail and say which marker it lacks: the fast lane
deselects by marker, so an unmarked slow test must not pass there unseen.
"""
import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

BIN = os.path.dirname(sys.executable)
PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REQUIRE_SERVICES = os.environ.get('MYAPP_REQUIRE_SERVICES') == '1'
FAST_LANE = os.environ.get('MYAPP_FAST_LANE') == '1'

SERVICES = {
    'redis': ('127.0.0.1', 6379),
    'rabbitmq': ('127.0.0.1', 5672),
    'postgresql': ('127.0.0.1', 5432),
}

#: One queue name per test run, so a run never consumes another's messages.
RUN_QUEUE = f'myapp-test-{uuid.uuid4().hex[:8]}'
POSTGRES_ADMIN_URL = 'postgresql+psycopg://postgres@127.0.0.1:5432/test'
POSTGRES_DB = f'myapp_test_{uuid.uuid4().hex[:8]}'  # one per run, too

BROKERS = {
    'filesystem': 'filesystem://localhost//',
    'memory': 'memory://',
    'redis': 'redis://127.0.0.1:6379/15',
    'rabbitmq': 'amqp://guest:guest@127.0.0.1:5672//',
}
BACKENDS = {
    'sqlite': 'db+sqlite:///%(here)s/var/results.sqlite',
    'redis': 'redis://127.0.0.1:6379/14',
    'postgresql': f'db+postgresql+psycopg://postgres@127.0.0.1:5432/'
                  f'{POSTGRES_DB}',
}
DATABASES = {
    'sqlite': 'sqlite:///%(here)s/var/myapp.sqlite',
    'postgresql': f'postgresql+psycopg://postgres@127.0.0.1:5432/'
                  f'{POSTGRES_DB}',
}
FILESYSTEM_OPTIONS = """
[celery:broker_transport_options]
data_folder_in = %(here)s/var/broker/queue
data_folder_out = %(here)s/var/broker/queue
control_folder = %(here)s/var/broker/control
processed_folder = %(here)s/var/broker/processed
polling_interval = 0.05
"""
#: INFO and up to stderr: the worker's log (its "ready."), as pserve's.
LOGGING = """
[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = INFO
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(asctime)s %(levelname)s [%(name)s] %(message)s
"""


def service_available(name):
    host, port = SERVICES[name]
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def require(*names):
    """Skip (or, in CI, fail) unless every named service answers."""
    for name in names:
        if FAST_LANE:
            pytest.fail(f'this test needs {name}: mark it '
                        '@pytest.mark.services', pytrace=False)
        if not service_available(name):
            host, port = SERVICES[name]
            message = f'{name} is not reachable on {host}:{port}'
            if REQUIRE_SERVICES:
                pytest.fail(f'{message} and MYAPP_REQUIRE_SERVICES=1')
            pytest.skip(message)


#: jobs.resend_unstarted_after in the tests' inis, unless a test sets it.
TEST_RESEND_AFTER = 24 * 3600


#: The periodic jobs of the schedule tests' ini (whose zone is Tokyo's):
#: "paused" is in the ini but disabled, and
#: "purge" runs a task that is not exposed (the ini's author may).
SCHEDULE_SECTIONS = """
[celerybeat:tick]
task = myapp.tasks.add
type = integer
schedule = 60
args = [1, 2]

[celerybeat:paused]
task = myapp.tasks.add
type = integer
schedule = 60
args = [3, 4]
enabled = false

[celerybeat:purge]
task = myapp.jobs.tasks.purge_history
type = crontab
schedule = {"minute": "30", "hour": "3"}
kwargs = {"older_than_days": 30}
"""

def write_ini(directory, broker='filesystem', backend='sqlite',
              database='sqlite', concurrency=2, celery='', extra='', app='',
              session_secret='test-session-secret'):
    """Write an ini like development.ini with the chosen backends
    (``session_secret=None`` leaves ``session.secret`` out)."""
    directory = str(directory)
    transport = FILESYSTEM_OPTIONS if broker == 'filesystem' else ''
    if 'auth.enabled' not in app:
        # Access control has tests of its own (test_security.py); the
        # others act as everyone may with it off, as in development.ini.
        app += '\nauth.enabled = false'
    if 'jobs.resend_unstarted_after' not in app:
        # A run's tests share one PostgreSQL database and one queue: a
        # worker must not send again the jobs that tests before it left
        # unstarted (only a test about lost messages asks for that).
        app += f'\njobs.resend_unstarted_after = {TEST_RESEND_AFTER}'
    text = textwrap.dedent("""\
        [app:main]
        use = egg:myapp
        sqlalchemy.url = {database}
        {session}
        {app}

        [pshell]
        setup = myapp.pshell.setup

        [celery]
        broker_url = {broker}
        result_backend = {backend}
        task_default_queue = {queue}
        worker_concurrency = {concurrency}
        {celery}
        {transport}
        {extra}

        [alembic]
        script_location = myapp:alembic
        {logging}
        """).format(database=DATABASES.get(database, database),
                    session='' if session_secret is None
                    else f'session.secret = {session_secret}',
                    broker=BROKERS.get(broker, broker),
                    backend=BACKENDS.get(backend, backend), queue=RUN_QUEUE,
                    concurrency=concurrency,
                    celery=textwrap.dedent(celery), transport=transport,
                    extra=textwrap.dedent(extra), app=textwrap.dedent(app),
                    logging=LOGGING)
    path = os.path.join(directory, 'test.ini')
    with open(path, 'w') as handle:
        handle.write(text)
    return path


def run_command(*args, timeout=60, **kwargs):
    """Run one of the project's console scripts; return the CompletedProcess."""
    command = [os.path.join(BIN, args[0]), *args[1:]]
    return subprocess.run(command, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, **kwargs)


def run_initialize_db(ini):
    """``initialize_myapp_db INI`` as a process (the benchmarks use it)."""
    result = run_command('initialize_myapp_db', ini)
    if result.returncode != 0:
        raise RuntimeError(f'initialize_myapp_db {ini}: '
                           f'{result.stderr.strip()}')
    return ini


@contextlib.contextmanager
def processes_refused():
    """While open, starting any process (a worker, a console script, a
    browser's driver) fails the test with the marker it lacks."""
    def refuse(args, *more, **options):
        pytest.fail(f'this test starts a process ({args}): mark it '
                    '@pytest.mark.worker', pytrace=False)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess, 'Popen', refuse)
        yield


MIGRATION_INI = """\
[app:main]
use = egg:myapp
sqlalchemy.url = {url}

[alembic]
script_location = myapp:alembic
"""


def migrate(url, directory):
    """Bring the database at ``url`` to the current schema, in this process:
    ``initialize_myapp_db``'s own code, run on an ini without [loggers] so
    that the test process's logging is left as it is."""
    from myapp.scripts import initialize_db

    ini = os.path.join(str(directory), 'migrate.ini')
    with open(ini, 'w') as handle:
        handle.write(MIGRATION_INI.format(url=url))
    initialize_db.main(['initialize_myapp_db', ini])


def database_of(ini):
    """The URL of the ini's app database, as the app reads it."""
    from pyramid.paster import get_appsettings

    from myapp.models import get_engine

    engine = get_engine(get_appsettings(ini))
    engine.dispose()
    return engine.url


def copy_sqlite(source, target):
    """Copy a SQLite database with SQLite's backup (safe in WAL mode)."""
    os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    with contextlib.closing(sqlite3.connect(source)) as origin, \
            contextlib.closing(sqlite3.connect(target)) as copy:
        origin.backup(copy)


class Worker:
    """A real ``pceleryd`` (or ``pcelerybeat``) process, stopped by its pid.

    ``Worker(ini, '--beat')`` runs ``pceleryd ini --beat``; ``command`` and
    ``argv`` run another form (``pcelerybeat``, ``celery -A ...``); ``env``
    replaces the environment and ``cwd`` the current directory (None: this
    process's).
    """

    def __init__(self, ini, *options, command='pceleryd', argv=None,
                 ready_text='ready.', env=None, cwd=None):
        self.argv = [command, *(argv or [ini, *options])]
        names_itself = {'-n', '--hostname'} & set(self.argv)
        if (command == 'pceleryd' or 'worker' in self.argv) \
                and not names_itself:
            # Its own node name: on a shared Redis or RabbitMQ, a worker of
            # another run (another checkout, another Python) named
            # celery@HOST holds the same exclusive pidbox queue and answers
            # this run's broadcasts.
            self.argv += ['--hostname',
                          f'{RUN_QUEUE}-{uuid.uuid4().hex[:6]}@%h']
        self.command, self.ready_text, self.env = command, ready_text, env
        self.cwd = cwd
        self.log_path = os.path.join(os.path.dirname(ini),
                                     f'{command}-{uuid.uuid4().hex[:6]}.log')
        self.process = None

    def start(self, timeout=30):
        assert self.process is None, 'already started'
        self.log = open(self.log_path, 'w')
        self.process = subprocess.Popen(
            [os.path.join(BIN, self.argv[0]), *self.argv[1:]],
            stdout=self.log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=self.env, cwd=self.cwd)
        deadline = time.monotonic() + timeout
        while self.ready_text not in self.output():
            if self.process.poll() is not None:
                raise AssertionError(f'{self.command} exited with '
                                     f'{self.process.returncode}:\n'
                                     f'{self.output()}')
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f'{self.command} not ready after '
                                     f'{timeout}s:\n{self.output()}')
            time.sleep(0.1)
        return self

    def output(self):
        with open(self.log_path) as handle:
            return handle.read()

    def wait_for(self, text, timeout=30):
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if time.monotonic() > deadline:
                raise AssertionError(f'"{text}" not seen in {timeout}s:\n'
                                     f'{self.output()}')
            time.sleep(0.1)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.process is None or self.process.poll() is not None:
            return
        self.signal(sig)
        self.wait_stopped(timeout)

    def children(self):
        """The pids of its pool processes (its children, from /proc)."""
        pid = str(self.process.pid)
        found = []
        for entry in os.listdir('/proc'):
            try:
                with open(f'/proc/{entry}/stat') as handle:
                    fields = handle.read().rpartition(')')[2].split()
            except (OSError, ValueError):
                continue
            if fields[1] == pid:
                found.append(int(entry))
        return found

    def kill_outright(self):
        """SIGKILL it and its pool processes at once, as a machine lost
        would: nothing of it runs on, nothing is cleaned up."""
        children = self.children()
        self.process.kill()
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        self.wait_stopped()

    def signal(self, sig=signal.SIGTERM):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)

    def wait_stopped(self, timeout=30):
        """Wait for the process to end (killing it after ``timeout``)."""
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
