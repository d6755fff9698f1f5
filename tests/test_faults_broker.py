"""Faults, reproduced for real on servers of the test's own
(tests/servers.py): nothing hangs, and workers come back.

* a Redis broker frozen by SIGSTOP: ``POST /api/jobs`` on a real ``pserve``
  answers 202 within ``celery.send_timeout``, the job stays in the outbox,
  and the sweeper sends it once the broker thaws;
* a Redis result backend frozen: a POST still answers at once, a running
  job's progress keeps being recorded in its row, and the job finishes;
* an app database that accepts connections and never answers: every
  command stops with an error within psycopg's connect timeout;
* a broker restarted (killed, started again on its port) while 20 jobs a
  second flow: the worker stays up and runs every job sent afterwards.

The first tests, without a marker, check the defaults themselves.
"""
import concurrent.futures
import json
import threading
import time
import urllib.request

import pytest
import webtest
from pyramid.paster import get_app

from myapp.celery_integration import timeouts
from myapp.celery_integration.errors import StartupError
from myapp.jobs.tasks import send_unsent

from .jobs_support import FINISHED, load_job, poll_job, wait_until
from .servers import free_port
from .support import Worker, run_command, write_ini


# -- the defaults (no process) -----------------------------------------------

def defaults(app_settings=None, **settings):
    timeouts.apply_timeout_defaults(settings, app_settings or {}, 'x.ini')
    return settings


#: A dead worker's unread messages come back within a minute, not an hour.
REDIS_REDELIVERY = {'visibility_timeout': 45, 'unacked_restore_interval': 5,
                    'unacked_restore_throttle': 1}


def test_a_redis_broker_and_results_get_bounded_waits():
    settings = defaults(broker_url='redis://h:6379/0',
                        result_backend='redis://h:6379/1')
    assert settings['broker_connection_timeout'] == 2
    assert settings['task_publish_retry_policy']['max_retries'] == 1
    assert settings['broker_transport_options'] == {
        'socket_timeout': 2, 'socket_connect_timeout': 2,
        'socket_keepalive': True, **REDIS_REDELIVERY}
    assert settings['redis_socket_timeout'] == 2
    assert settings['redis_socket_connect_timeout'] == 2
    policy = settings['result_backend_transport_options']['retry_policy']
    assert policy['timeout'] == 2


def test_the_send_timeout_scales_every_wait():
    settings = defaults({'celery.send_timeout': '1.5'},
                        broker_url='amqp://guest@h//')
    assert settings['broker_connection_timeout'] == 0.5
    assert settings['broker_transport_options'] == {'write_timeout': 0.5}
    assert settings['broker_heartbeat'] == 30


@pytest.mark.parametrize('value', ['soon', '0', '-1', 'inf', 'nan'])
def test_a_bad_send_timeout_stops_start_up(value):
    with pytest.raises(StartupError, match='celery.send_timeout'):
        defaults({'celery.send_timeout': value})


def test_what_the_ini_sets_wins():
    settings = defaults(
        broker_url='redis://h//', broker_connection_timeout=9,
        task_publish_retry_policy={'max_retries': 7},
        broker_transport_options={'socket_timeout': 30,
                                  'visibility_timeout': 1},
        result_backend='redis://h/1', redis_socket_timeout=11,
        result_backend_transport_options={'retry_policy': {'timeout': 60}})
    assert settings['broker_connection_timeout'] == 9
    assert settings['task_publish_retry_policy'] == {'max_retries': 7}
    assert settings['broker_transport_options'] == {
        **REDIS_REDELIVERY, 'socket_timeout': 30, 'visibility_timeout': 1,
        'socket_connect_timeout': 2, 'socket_keepalive': True}
    assert settings['redis_socket_timeout'] == 11
    assert settings['result_backend_transport_options'] == {
        'retry_policy': {'timeout': 60}}


def test_postgresql_gets_a_connect_timeout_that_its_url_may_change():
    from sqlalchemy import make_url

    settings = defaults(
        broker_url='memory://',
        result_backend='db+postgresql+psycopg://u@h/db?connect_timeout=3',
        database_engine_options={'echo': True})
    options = settings['database_engine_options']
    assert options['echo'] is True
    assert 'connect_timeout' not in options['connect_args']  # the URL's 3
    assert options['connect_args']['keepalives'] == 1
    app_db = timeouts.database_connect_args(make_url('postgresql://u@h/db'))
    assert app_db['connect_timeout'] == timeouts.DATABASE_CONNECT_TIMEOUT
    assert timeouts.database_connect_args(make_url('sqlite://')) == {}


# -- helpers ---------------------------------------------------------------

def server_section(port):
    return f"""
        [server:main]
        use = egg:waitress#main
        listen = 127.0.0.1:{port}
        threads = 4
        """


def http_post_job(port, task, *args, **kwargs):
    """POST /api/jobs over HTTP; return (seconds it took, status, job)."""
    body = json.dumps({'task': task, 'args': list(args),
                       'kwargs': kwargs}).encode()
    request = urllib.request.Request(
        f'http://127.0.0.1:{port}/api/jobs', data=body, method='POST',
        headers={'Content-Type': 'application/json'})
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=120) as response:
        return (time.monotonic() - started, response.status,
                json.loads(response.read()))


def http_get_job(port, job_id):
    with urllib.request.urlopen(
            f'http://127.0.0.1:{port}/api/jobs/{job_id}', timeout=30) as r:
        return json.loads(r.read())


def sweep():
    """The outbox sweeper, now, in this process."""
    return send_unsent.apply(kwargs={'older_than_seconds': 0}).get()


def sweep_all():
    """Sweep until the outbox is empty (a sweep sends 100 at most)."""
    total = 0
    while (sent := sweep()):
        total += sent
    return total


# -- nothing hangs -----------------------------------------------------------

@pytest.mark.worker
@pytest.mark.services
def test_a_frozen_redis_broker_does_not_hang_pserve(
        tmp_path, initialize_db, private_redis):
    bound = 3  # seconds: celery.send_timeout
    port = free_port()
    ini = initialize_db(write_ini(
        tmp_path, broker=private_redis.url(), app=f'celery.send_timeout = '
        f'{bound}', extra=server_section(port)))
    with Worker(ini, command='pserve', argv=[ini],
                ready_text='Serving on'):
        http_post_job(port, 'myapp.tasks.add', 1, 1)  # a warm connection
        private_redis.freeze()
        try:
            # As many at once as waitress has threads: before, these four
            # blocked for 302 s each and pserve answered nothing meanwhile.
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                posts = list(pool.map(
                    lambda i: http_post_job(port, 'myapp.tasks.add', i, 1),
                    range(4)))
            latencies = sorted(round(seconds, 2) for seconds, _, _ in posts)
            print(f'POST latencies with the broker frozen: {latencies}')
            assert {status for _, status, _ in posts} == {202}
            assert max(latencies) < bound + 1.5, latencies
            jobs = [job for _, _, job in posts]
            assert [job['sent_at'] for job in jobs] == [None] * 4
            started = time.monotonic()
            for job in jobs:  # the outbox, as the app reads it
                assert http_get_job(port, job['id'])['sent_at'] is None
            assert time.monotonic() - started < 2  # pserve still answers
        finally:
            private_redis.thaw()
        app = get_app(ini)  # this process sends, as the sweeper would
        assert sweep() == 4
        with Worker(ini):
            api = webtest.TestApp(app)
            for job in jobs:
                done = poll_job(api, job['id'])
                assert (done['state'], done['result']) == \
                    ('SUCCESS', job['args'][0] + 1)
                assert done['sent_at'] is not None


@pytest.mark.worker
@pytest.mark.services
def test_a_frozen_redis_result_backend_does_not_stop_jobs(
        tmp_path, initialize_db, private_redis, private_redis_results):
    ini = initialize_db(write_ini(
        tmp_path, broker=private_redis.url(),
        backend=private_redis_results.url(), app='celery.send_timeout = 1.5'))
    api = webtest.TestApp(get_app(ini))
    with Worker(ini, '--loglevel', 'INFO') as worker:
        job_id = api.post_json('/api/jobs', {
            'task': 'myapp.tasks.slow_add', 'args': [1, 2],
            'kwargs': {'seconds': 6}}, status=202).json['id']
        poll_job(api, job_id, until=lambda job: job['state'] == 'PROGRESS')
        private_redis_results.freeze()
        try:
            started = time.monotonic()
            other = api.post_json('/api/jobs', {'task': 'myapp.tasks.add',
                                                'args': [2, 2]}).json['id']
            post_seconds = time.monotonic() - started
            print(f'POST with the result backend frozen: {post_seconds:.2f}s')
            assert post_seconds < 1
            seen = set()

            def finished():
                job = api.get(f'/api/jobs/{job_id}').json
                if job['progress']:
                    seen.add(job['progress']['current'])
                return job if job['state'] in FINISHED else None

            job = wait_until(finished, timeout=60, what='slow_add to end')
            assert (job['state'], job['result']) == ('SUCCESS', 3)
            assert job['progress']['current'] == 6
            assert len(seen) >= 3  # recorded while the backend was frozen
            assert 'progress not stored in the result backend' in \
                worker.output()
            done = poll_job(api, other, timeout=60)
            assert (done['state'], done['result']) == ('SUCCESS', 4)
            assert worker.process.poll() is None
        finally:
            private_redis_results.thaw()


COMMANDS = [
    ('pceleryd', ['--loglevel', 'INFO']),
    ('pcelerybeat', []),
    ('pshell', []),
    ('initialize_myapp_db', []),
]


@pytest.mark.worker
@pytest.mark.services
def test_commands_stop_on_a_database_that_never_answers(
        tmp_path, silent_port):
    ini = write_ini(tmp_path, broker='memory', database='postgresql+psycopg'
                    f'://postgres@127.0.0.1:{silent_port}/test')

    def run(command):
        name, options = command
        started = time.monotonic()
        result = run_command(name, ini, *options, timeout=60)
        return name, time.monotonic() - started, result

    with concurrent.futures.ThreadPoolExecutor(len(COMMANDS)) as pool:
        outcomes = list(pool.map(run, COMMANDS))
    limit = timeouts.DATABASE_CONNECT_TIMEOUT + 10  # + the command's start
    for name, seconds, result in outcomes:
        print(f'{name}: exit {result.returncode} after {seconds:.1f}s: '
              f'{result.stderr.strip().splitlines()[-1:]}')
        assert result.returncode != 0, (name, result.stdout, result.stderr)
        assert seconds < limit, (name, seconds)
        assert 'timeout' in result.stderr.lower(), (name, result.stderr)
    # Each says so in one line.
    for name, _, result in outcomes:
        assert result.stderr.strip().splitlines()[-1].startswith(
            'error: cannot connect to the database'), result.stderr


# -- workers come back -------------------------------------------------------

class Feeder(threading.Thread):
    """POSTs ``add`` jobs at ``rate`` a second until stopped; each job is
    tagged with the phase it was asked for in."""

    def __init__(self, api, rate=20):
        super().__init__(daemon=True)
        self.api, self.rate = api, rate
        self.phase = 'before'
        self.jobs = []  # (phase, job id, sent)
        self.stopped = threading.Event()
        self.errors = []

    def run(self):
        n = 0
        next_at = time.monotonic()
        while not self.stopped.is_set():
            phase = self.phase
            try:
                job = self.api.post_json('/api/jobs', {
                    'task': 'myapp.tasks.add', 'args': [n, 1]},
                    status=202).json
                self.jobs.append((phase, job['id'], n + 1))
            except Exception as exc:  # pragma: no cover - reported below
                self.errors.append(repr(exc))
            n += 1
            next_at += 1 / self.rate
            time.sleep(max(0, next_at - time.monotonic()))

    def stop(self):
        self.stopped.set()
        self.join(30)


def restart_under_load(tmp_path, initialize_db, server, broker_url,
                       restarts=3):
    """Start a worker, feed it 20 jobs a second, restart the broker
    ``restarts`` times, 2 s apart, feed on: the worker must stay up and run
    what was sent after the last restart (and what the outbox held)."""
    ini = initialize_db(write_ini(tmp_path, broker=broker_url, celery="""
        task_acks_late = true
        task_reject_on_worker_lost = true
        worker_prefetch_multiplier = 1
        """))
    app = get_app(ini)
    api = webtest.TestApp(app)
    with Worker(ini, '--loglevel', 'INFO') as worker:
        # A long job keeps a message unacknowledged through the restarts
        # (late acks): what kombu's Redis transport failed to restore.
        long_job = api.post_json('/api/jobs', {
            'task': 'myapp.tasks.slow_add', 'args': [1, 2],
            'kwargs': {'seconds': 12}}, status=202).json['id']
        poll_job(api, long_job, until=lambda job: job['state'] == 'PROGRESS')
        feeder = Feeder(api)
        feeder.start()
        try:
            for restart in range(restarts):
                time.sleep(2)
                started = time.monotonic()
                server.kill()
                # Only now: a job sent a moment before the kill may have
                # been taken by the broker, and lost with its memory (it
                # counts with the earlier phase).
                feeder.phase = f'restart {restart}'
                server.start()
                print(f'broker restarted in {time.monotonic() - started:.1f}s')
                assert worker.process.poll() is None, worker.output()[-5000:]
            feeder.phase = 'after'
            time.sleep(4)
        finally:
            feeder.stop()
        assert not feeder.errors, feeder.errors
        assert worker.process.poll() is None, worker.output()[-5000:]
        # What the broker refused while it was down is in the outbox.
        print(f'{sweep_all()} jobs sent from the outbox')
        api = webtest.TestApp(app)
        after = [(job_id, result) for phase, job_id, result in feeder.jobs
                 if phase in ('after', f'restart {restarts - 1}')]
        assert len(after) > 40
        job = poll_job(api, long_job, timeout=60)
        assert (job['state'], job['result']) == ('SUCCESS', 3)
        for job_id, result in after:
            job = poll_job(api, job_id, timeout=90)
            assert (job['state'], job['result']) == ('SUCCESS', result)
        # Messages queued at a restart die with the broker's memory (no
        # persistence); a job whose row was already finished is fine.
        lost = [job_id for phase, job_id, _ in feeder.jobs
                if (job_id, _) not in after
                and load_job(app, job_id).state not in FINISHED]
        print(f'{len(feeder.jobs)} jobs; the {len(after)} sent during or '
              f'after the last restart all SUCCESS; {len(lost)} queued at '
              'an earlier restart lost with the broker')
        assert worker.process.poll() is None
        output = worker.output()
        assert 'Unrecoverable error' not in output, output[-5000:]
        assert "object has no attribute 'hostname'" not in output, \
            output[-5000:]
    return worker


@pytest.mark.worker
@pytest.mark.services
def test_a_worker_survives_a_redis_restart_under_load(
        tmp_path, initialize_db, private_redis):
    restart_under_load(tmp_path, initialize_db, private_redis,
                       private_redis.url())


@pytest.mark.worker
@pytest.mark.services
def test_a_worker_survives_a_rabbitmq_restart_under_load(
        tmp_path, initialize_db, private_rabbitmq):
    restart_under_load(tmp_path, initialize_db, private_rabbitmq,
                       private_rabbitmq.url(), restarts=1)
