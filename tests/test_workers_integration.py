"""Workers and queues with real workers, on the embedded broker, Redis and
RabbitMQ: a worker shows itself online with what Celery says of it (the
``celery`` command line agrees), its running job; SIGKILLed, it is gone
and its job stuck; stopped, it says so; and the broker counts the
messages that wait."""
import socket

import pytest
import webtest
from pyramid.paster import get_app

from .jobs_support import wait_until
from .support import RUN_QUEUE, Worker, require, run_command, write_ini

pytestmark = pytest.mark.worker

#: A heartbeat each half second: a dead worker is gone in 2.5 s.
FAST_HEARTBEAT = 'workers.heartbeat_seconds = 0.5'


@pytest.fixture(params=['filesystem', 'redis', 'rabbitmq'])
def broker_ini(request, tmp_path, initialize_db):
    if request.param != 'filesystem':
        require(request.param)
        request.applymarker(pytest.mark.services)
    return initialize_db(write_ini(tmp_path, broker=request.param,
                                   app=FAST_HEARTBEAT))


def shown(api, hostname):
    return next((worker for worker in api.get('/api/workers').json[
        'workers'] if worker['hostname'] == hostname), None)


def hostname_of(worker):
    name = worker.argv[worker.argv.index('--hostname') + 1]
    return name.replace('%h', socket.gethostname())


def depth(api):
    queues = {queue['name']: queue for queue in
              api.get('/api/queues').json['queues']}
    return queues[RUN_QUEUE]


def test_a_worker_seen_running_dying_and_its_queue(broker_ini):
    api = webtest.TestApp(get_app(broker_ini))
    worker = Worker(broker_ini).start()
    try:
        hostname = hostname_of(worker)
        online = wait_until(lambda: shown(api, hostname),
                            what=f'{hostname} in /api/workers')
        assert (online['status'], online['pid'], online['pool'],
                online['concurrency'], online['queues']) == (
            'online', worker.process.pid, 'prefork', 2, [RUN_QUEUE])
        # Celery's own command line sees the same worker.
        ping = run_command('celery', '-A', 'myapp.celery_integration',
                           'inspect', 'ping', '--ini', broker_ini,
                           '-d', hostname, '--timeout', '5')
        assert ping.returncode == 0 and f'{hostname}: OK' in ping.stdout
        assert depth(api)['workers'] == [hostname]

        job_id = api.post_json('/api/jobs', {
            'task': 'myapp.tasks.slow_add', 'args': [1, 2],
            'kwargs': {'seconds': 60}}, status=202).json['id']
        wait_until(lambda: job_id in shown(api, hostname)['active'],
                   what='the job among the worker\'s active ones')
        assert shown(api, hostname)['processed'] >= 1

        worker.kill_outright()
        wait_until(lambda: shown(api, hostname)['status'] == 'gone',
                   timeout=10, what='the killed worker shown as gone')
        stuck = api.get('/api/jobs/stuck').json
        assert [job['id'] for job in stuck['jobs']] == [job_id]
        assert hostname not in stuck['online']

        # No worker consumes the queue now: messages wait, and are counted.
        waiting = depth(api)
        assert waiting['workers'] == []
        for number in range(3):
            api.post_json('/api/jobs', {'task': 'myapp.tasks.add',
                                        'args': [number, 1]}, status=202)
        wait_until(lambda: depth(api)['messages'] >= waiting['messages'] + 3,
                   timeout=10, what='3 more messages waiting')
        assert depth(api)['messages'] == waiting['messages'] + 3
    finally:
        worker.stop()
    page = api.get('/workers')
    assert 'gone' in page.text and job_id[:8] in page.text
    api.app.registry['dbsession_factory'].kw['bind'].dispose()


def test_a_worker_that_stops_cleanly_says_so(tmp_path, initialize_db):
    ini = initialize_db(write_ini(tmp_path, app=FAST_HEARTBEAT))
    api = webtest.TestApp(get_app(ini))
    with Worker(ini) as worker:
        hostname = hostname_of(worker)
        wait_until(lambda: shown(api, hostname), what='the worker shown')
    stopped = shown(api, hostname)
    assert stopped['status'] == 'stopped' and stopped['stopped_at']
    assert api.get('/api/workers').json['online'] == 0
    api.app.registry['dbsession_factory'].kw['bind'].dispose()
