"""Nothing stuck, none lost, none run twice, with real workers killed.

A pool process killed mid-run, a whole worker killed outright (as a lost
machine), the hard time limit, and a broker that redelivers a message
while its first run is alive.  Leases are 3 s here (30 s by default), so
that a lost run is found in seconds.
"""
import os
import signal
import time

import pytest
import webtest
from pyramid.paster import get_app
from sqlalchemy import delete, select

from myapp.celery_integration import celery_app
from myapp.models import Calculation, Job

from .jobs_support import load_job, poll_job, transaction_of
from .support import PROJECT, Worker, require, write_ini

pytestmark = pytest.mark.worker

SHORT_LEASE = 'jobs.lease_seconds = 3'
#: Redis gives a message whose worker died to another after 2 s (1 h by
#: default), checking every second.
REDELIVER_SOON = """
[celery:broker_transport_options]
visibility_timeout = 2
unacked_restore_interval = 1
unacked_restore_throttle = 1
"""


def start(api, task, *args, **fields):
    body = {'task': task, 'args': list(args), **fields}
    return api.post_json('/api/jobs', body, status=202).json['id']


def slow(api, seconds, x=1):
    return start(api, 'myapp.tasks.slow_add', x, 1,
                 kwargs={'seconds': seconds})


def progressing(api, job_id):
    return poll_job(api, job_id, until=lambda job: job['state'] == 'PROGRESS')


def setup(request, broker='filesystem', concurrency=1, celery='', extra='',
          app=''):
    """An ini with a short lease (PostgreSQL and a Redis result backend
    beside a server broker), its database ready; and the app's API."""
    if broker != 'filesystem':
        require(broker)
        request.getfixturevalue('postgres_database')
    tmp_path = request.getfixturevalue('tmp_path')
    ini = write_ini(
        tmp_path, broker=broker, concurrency=concurrency,
        app=f'{SHORT_LEASE}\n{app}',
        backend='sqlite' if broker == 'filesystem' else 'redis',
        database='sqlite' if broker == 'filesystem' else 'postgresql',
        celery=celery, extra=extra)
    if broker == 'filesystem':
        request.getfixturevalue('initialize_db')(ini)
    return ini, webtest.TestApp(get_app(ini))


@pytest.mark.parametrize('broker', [
    'filesystem',
    pytest.param('redis', marks=pytest.mark.services),
    pytest.param('rabbitmq', marks=pytest.mark.services)])
def test_a_job_whose_pool_process_dies_runs_again_at_once(request, broker):
    ini, api = setup(request, broker)
    with Worker(ini, '--loglevel', 'INFO') as worker:
        job_id = slow(api, 3)
        progressing(api, job_id)
        child, = worker.children()
        os.kill(child, signal.SIGKILL)
        job = poll_job(api, job_id)
        assert (job['state'], job['result']) == ('SUCCESS', 2)
        assert load_job(api.app, job_id).lost_runs == 1
        assert worker.process.poll() is None  # the worker carried on
        after = poll_job(api, start(api, 'myapp.tasks.add', 2, 2))
        assert after['result'] == 4


@pytest.mark.parametrize('broker', [
    'filesystem',
    pytest.param('redis', marks=pytest.mark.services),
    pytest.param('rabbitmq', marks=pytest.mark.services)])
def test_the_jobs_of_a_worker_killed_outright_run_on_another(request,
                                                            broker):
    # On Redis, the default visibility timeout (45 s) brings back the jobs
    # the dead worker had prefetched.
    ini, api = setup(request, broker)
    first = Worker(ini, '--loglevel', 'INFO').start()
    try:
        # One running, the others queued or prefetched by that worker.
        job_ids = [slow(api, 2, x) for x in range(4)]
        progressing(api, job_ids[0])
    finally:
        first.kill_outright()
    with Worker(ini, '--loglevel', 'INFO'):
        jobs = [poll_job(api, job_id, timeout=90) for job_id in job_ids]
    assert [(job['state'], job['result']) for job in jobs] == \
        [('SUCCESS', x + 1) for x in range(4)]
    assert load_job(api.app, job_ids[0]).lost_runs == 1


def test_the_hard_time_limit_fails_the_job_saying_so(request):
    ini, api = setup(request, celery='task_time_limit = 2')
    with Worker(ini, '--loglevel', 'INFO'):
        job = poll_job(api, slow(api, 10))
        assert (job['state'], job['error']['type']) == \
            ('FAILURE', 'billiard.exceptions.TimeLimitExceeded')
        assert job['progress']['current'] < 10
        assert poll_job(api, start(api, 'myapp.tasks.add', 1, 1))[
            'result'] == 2


def forget_unstarted_jobs(app):
    """Delete the jobs that earlier tests (sharing this run's PostgreSQL
    database and queue) left waiting, and the messages in the queue."""
    with transaction_of(app) as request:
        request.dbsession.execute(delete(Job).where(Job.state == 'PENDING'))
    with celery_app.connection_for_write() as connection:
        connection.default_channel.queue_purge(
            celery_app.conf.task_default_queue)


@pytest.mark.parametrize('broker', [
    'filesystem',
    pytest.param('redis', marks=pytest.mark.services),
    pytest.param('rabbitmq', marks=pytest.mark.services)])
def test_a_job_whose_message_the_broker_lost_runs_after_all(request, broker):
    # As kombu's Redis transport does when its worker dies between taking
    # the message and recording it unacknowledged, or a broker restarted
    # without persistence: the job was sent, and its message is gone.
    ini, api = setup(request, broker,
                     app='jobs.resend_unstarted_after = 5')
    forget_unstarted_jobs(api.app)  # those of earlier tests would go too
    job_id = start(api, 'myapp.tasks.add', 2, 3)
    with celery_app.connection_for_write() as connection:
        assert connection.default_channel.queue_purge(
            celery_app.conf.task_default_queue) == 1
    time.sleep(5)
    with Worker(ini, '--loglevel', 'INFO') as worker:
        job = poll_job(api, job_id)
        assert 'its message was lost before any run' in worker.output()
    assert (job['state'], job['result']) == ('SUCCESS', 5)
    assert load_job(api.app, job_id).lost_runs == 1


@pytest.mark.services
def test_a_message_redelivered_while_its_run_lives_does_not_run_it_twice(
        request):
    ini, api = setup(request, 'redis', concurrency=2,
                     celery='task_acks_late = true', extra=REDELIVER_SOON)
    with Worker(ini, '--loglevel', 'INFO') as worker:
        job_id = slow(api, 8)
        worker.wait_for(f'myapp.tasks.slow_add[{job_id}]: not run: the job '
                        'is', timeout=30)
        job = poll_job(api, job_id)
        time.sleep(1)
        log = worker.output()
    assert (job['state'], job['result']) == ('SUCCESS', 2)
    assert log.count(f'Task myapp.tasks.slow_add[{job_id}] succeeded') == 1


@pytest.mark.parametrize('broker', [
    'filesystem',
    pytest.param('redis', marks=pytest.mark.services),
    pytest.param('rabbitmq', marks=pytest.mark.services)])
def test_a_worker_killed_between_commit_and_ack_runs_nothing_twice(
        request, broker, tmp_path):
    """The run's writes and its SUCCESS commit together; the worker dies
    (SIGKILL) before it acknowledges the message, which the broker then
    delivers again: the second delivery runs nothing."""
    ini, api = setup(request, broker, celery='imports = tests.crash_tasks',
                     extra=REDELIVER_SOON if broker == 'redis' else '')
    from tests import crash_tasks
    env = dict(os.environ, PYTHONPATH=PROJECT)
    marker = str(tmp_path / 'first-run')
    numbers = [int(time.time()), 7]  # this run's own operands
    first = Worker(ini, '--loglevel', 'INFO', env=env).start()
    try:
        job_id = crash_tasks.record_then_die.delay(numbers, marker).id
        first.process.wait(30)  # the task killed it
    finally:
        first.kill_outright()
    assert os.path.exists(marker)
    with Worker(ini, '--loglevel', 'INFO', env=env) as second:
        second.wait_for(f'record_then_die[{job_id}]: not run: the job is '
                        'SUCCESS', timeout=60)
    job = poll_job(api, job_id)
    assert (job['state'], job['result']) == ('SUCCESS', sum(numbers))
    # The first worker died before it stored the result; the second
    # delivery stored the recorded one: a caller waiting on it gets it.
    assert crash_tasks.record_then_die.AsyncResult(job_id).get(
        timeout=10) == sum(numbers)
    with transaction_of(api.app) as session_request:
        rows = session_request.dbsession.scalars(
            select(Calculation.operands)
            .where(Calculation.operation == 'crash-test')).all()
    assert rows.count(numbers) == 1


# -- poison messages -----------------------------------------------------------

def deeply_nested(depth):
    value = 1
    for _ in range(depth):
        value = [value]
    return value


def publish_raw(task_id, task_name, body):
    """A message as a foreign client could send it: Celery's headers and a
    body that may be anything."""
    with celery_app.producer_or_acquire() as producer:
        producer.publish(body, routing_key=celery_app.conf.task_default_queue,
                         serializer=None, content_type='application/json',
                         content_encoding='utf-8',
                         headers={'id': task_id, 'task': task_name,
                                  'lang': 'py', 'argsrepr': '',
                                  'kwargsrepr': ''},
                         declare=[celery_app.amqp.queues[
                             celery_app.conf.task_default_queue]])


@pytest.mark.parametrize('broker', [
    'filesystem', pytest.param('redis', marks=pytest.mark.services)])
def test_a_message_a_worker_cannot_run_fails_its_job_and_the_worker_goes_on(
        request, broker):
    ini, api = setup(request, broker)
    with Worker(ini, '--loglevel', 'INFO') as worker:
        nested = celery_app.send_task('myapp.tasks.xsum',
                                      args=[[deeply_nested(600)]]).id
        publish_raw('not-json', 'myapp.tasks.add', '[[1, 2], {}, {')
        publish_raw('no-such-task', 'myapp.tasks.gone',
                    '[[1, 2], {}, {}]')
        after = start(api, 'myapp.tasks.add', 2, 3)
        assert poll_job(api, after)['result'] == 5
        try:
            jobs = {job_id: poll_job(api, job_id) for job_id in
                    (nested, 'not-json', 'no-such-task')}
        except Exception:
            print(worker.output())
            raise
        assert worker.process.poll() is None
    assert {job_id: (job['state'], job['error']['type'])
            for job_id, job in jobs.items()} == {
        nested: ('FAILURE', 'celery.exceptions.InvalidTaskError'),
        'not-json': ('FAILURE', 'celery.exceptions.InvalidTaskError'),
        'no-such-task': ('FAILURE', 'celery.exceptions.NotRegistered')}
    assert 'nest deeper than 64' in jobs[nested]['error']['message']
    assert 'does not decode' in jobs['not-json']['error']['message']
