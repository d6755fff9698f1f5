"""Workers and queues without a worker process: the heartbeat a worker
writes (from a stand-in for Celery's consumer), the statuses the API and
the page derive from it, stuck jobs, and queue depths on the in-memory
broker.  tests/test_workers_integration.py runs real workers."""
import datetime
import types

import pytest
import webtest
from kombu import Queue
from pyramid.paster import get_app

from myapp.celery_integration import ConfigError, celery_app
from myapp.models import Job, Worker
from myapp.models.types import utcnow
from myapp.workers import heartbeat

from .jobs_support import load_job, transaction_of
from .support import RUN_QUEUE, write_ini


class TaskPool:  # what Celery's prefork pool says of itself
    __module__ = 'celery.concurrency.prefork'
    num_processes = 3


def consumer(hostname='celery@one'):
    """What a heartbeat reads of Celery's consumer."""
    return types.SimpleNamespace(
        hostname=hostname, pool=TaskPool(),
        controller=types.SimpleNamespace(concurrency=3),
        task_consumer=types.SimpleNamespace(
            queues=[Queue('b'), Queue('a')]))


def heart(app, hostname='celery@one'):
    return heartbeat.Heart(app.registry['dbsession_factory'],
                           consumer(hostname), heartbeat.HEARTBEAT)


def put_worker(app, hostname, silent_seconds=0, stopped=False, **columns):
    beat = utcnow() - datetime.timedelta(seconds=silent_seconds)
    values = {'pid': 1, 'pool': 'prefork', 'concurrency': 2,
              'queues': ['celery'], 'active': [], 'processed': 0,
              'software': 'celery 5', 'started_at': beat,
              'heartbeat_at': beat, 'stopped_at': beat if stopped else None,
              **columns}
    with transaction_of(app) as request:
        request.dbsession.add(Worker(hostname=hostname, **values))


def put_job(app, job_id, state, worker):
    with transaction_of(app) as request:
        request.dbsession.add(Job(
            id=job_id, task_name='myapp.tasks.add', args=[1, 2], kwargs={},
            options={}, origin='http', state=state, worker=worker,
            started_at=utcnow()))


# -- the heartbeat -----------------------------------------------------------

def test_a_heartbeat_describes_the_worker(api, monkeypatch):
    monkeypatch.setattr(heartbeat, 'activity', lambda: {
        'active': ['job-1'], 'processed': 7})
    heart(api.app).beat(started=True)
    [shown] = api.get('/api/workers').json['workers']
    assert {name: shown[name] for name in (
        'hostname', 'status', 'pool', 'concurrency', 'queues', 'active',
        'processed')} == {
        'hostname': 'celery@one', 'status': 'online', 'pool': 'prefork',
        'concurrency': 3, 'queues': ['a', 'b'], 'active': ['job-1'],
        'processed': 7}
    assert shown['pid'] > 0 and shown['software'].startswith('celery ')
    assert shown['last_heartbeat'] and shown['stopped_at'] is None
    assert api.get('/api/workers').json['online'] == 1


def test_each_beat_updates_the_row_and_a_stop_says_stopped(api,
                                                           monkeypatch):
    beating = heart(api.app)
    beating.beat(started=True)
    first = api.get('/api/workers').json['workers'][0]['last_heartbeat']
    monkeypatch.setattr(heartbeat, 'activity', lambda: {
        'active': [], 'processed': 12})
    beating.beat()
    again = api.get('/api/workers').json['workers'][0]
    assert again['processed'] == 12 and again['last_heartbeat'] >= first
    assert again['started_at'] <= first
    beating.stop()
    stopped = api.get('/api/workers').json['workers'][0]
    assert stopped['status'] == 'stopped' and stopped['stopped_at']
    assert api.get('/api/workers').json['online'] == 0


def test_a_restarted_worker_is_online_again(api):
    put_worker(api.app, 'celery@one', silent_seconds=600, stopped=True)
    heart(api.app).beat(started=True)
    [shown] = api.get('/api/workers').json['workers']
    assert shown['status'] == 'online' and shown['stopped_at'] is None


def test_the_heartbeat_thread_beats_until_stopped(api):
    beating = heartbeat.Heart(api.app.registry['dbsession_factory'],
                              consumer(), datetime.timedelta(seconds=0.05))
    beating.start()
    try:
        first = api.get('/api/workers').json['workers']
        while not first:  # its first beat is on the thread
            first = api.get('/api/workers').json['workers']
        deadline = utcnow() + datetime.timedelta(seconds=5)
        while api.get('/api/workers').json['workers'][0][
                'last_heartbeat'] == first[0]['last_heartbeat']:
            assert utcnow() < deadline, 'no second heartbeat'
    finally:
        beating.stop()
        beating.thread.join(5)
    assert not beating.thread.is_alive()


def test_a_worker_silent_for_five_heartbeats_is_gone_not_dropped(api):
    put_worker(api.app, 'celery@alive', silent_seconds=1)
    put_worker(api.app, 'celery@dead', silent_seconds=11, active=['job-1'])
    put_worker(api.app, 'celery@done', silent_seconds=30, stopped=True)
    listed = api.get('/api/workers').json
    assert [(w['hostname'], w['status']) for w in listed['workers']] == [
        ('celery@alive', 'online'), ('celery@dead', 'gone'),
        ('celery@done', 'stopped')]
    # What it ran when it died is a stuck job's, not a running one's.
    assert listed['workers'][1]['active'] == []
    assert listed['online'] == 1


def test_workers_silent_for_a_week_are_forgotten_when_one_starts(api):
    put_worker(api.app, 'celery@old', silent_seconds=8 * 24 * 3600)
    put_worker(api.app, 'celery@recent', silent_seconds=3600)
    heart(api.app).beat(started=True)
    assert sorted(w['hostname'] for w in api.get('/api/workers').json[
        'workers']) == ['celery@one', 'celery@recent']


def test_the_heartbeat_setting_is_checked(tmp_path, initialize_db):
    ini = initialize_db(write_ini(tmp_path, broker='memory',
                                  app='workers.heartbeat_seconds = 0'))
    with pytest.raises(ConfigError) as raised:
        get_app(ini)
    assert 'workers.heartbeat_seconds' in str(raised.value)
    assert '"0" is not a number of seconds of at least 0.2' \
        in str(raised.value)


def test_a_longer_heartbeat_takes_longer_to_be_gone(tmp_path, initialize_db):
    ini = initialize_db(write_ini(tmp_path, broker='memory',
                                  app='workers.heartbeat_seconds = 10'))
    app = get_app(ini)
    put_worker(app, 'celery@slow', silent_seconds=30)
    assert webtest.TestApp(app).get('/api/workers').json[
        'workers'][0]['status'] == 'online'
    app.registry['dbsession_factory'].kw['bind'].dispose()


# -- stuck jobs --------------------------------------------------------------

def test_jobs_running_on_a_worker_that_is_not_online_are_stuck(api):
    put_worker(api.app, 'celery@alive')
    put_worker(api.app, 'celery@dead', silent_seconds=60)
    put_job(api.app, 'on-alive', 'STARTED', 'celery@alive')
    put_job(api.app, 'on-dead', 'PROGRESS', 'celery@dead')
    put_job(api.app, 'on-unknown', 'STARTED', 'celery@never-seen')
    put_job(api.app, 'finished-on-dead', 'SUCCESS', 'celery@dead')
    put_job(api.app, 'queued', 'PENDING', None)
    stuck = api.get('/api/jobs/stuck').json
    assert sorted(job['id'] for job in stuck['jobs']) == [
        'on-dead', 'on-unknown']
    assert stuck['online'] == ['celery@alive']
    assert api.get('/api/jobs/stuck?limit=1').json['jobs'][0]['id'] in (
        'on-dead', 'on-unknown')


def test_with_no_worker_online_every_running_job_is_stuck(api):
    put_job(api.app, 'running', 'STARTED', 'celery@gone')
    assert [job['id'] for job in api.get('/api/jobs/stuck').json['jobs']] \
        == ['running']


@pytest.mark.parametrize('query, field', [
    ('limit=0', 'limit'), ('limit=x', 'limit'), ('color=red', None)])
def test_a_bad_stuck_query_is_400_naming_it(api, query, field):
    error = api.get(f'/api/jobs/stuck?{query}', status=400).json
    assert error['error']
    if field:
        assert field in error['error'] or field in str(error['detail'])


def test_the_workers_api_takes_no_parameters(api):
    for path in ('/api/workers', '/api/queues'):
        assert api.get(f'{path}?x=1', status=400).json['detail'][
            'unknown'] == ['x']


def test_the_page_cancels_and_retries_a_stuck_job(api, published):
    put_worker(api.app, 'celery@dead', silent_seconds=60)
    put_job(api.app, 'stuck-1', 'STARTED', 'celery@dead')
    page = api.get('/workers')
    assert 'stuck-1'[:8] in page.text
    form = next(f for f in page.forms.values()
                if f.action.endswith('/workers/stuck/stuck-1/rerun'))
    landed = form.submit(status=303).follow()
    assert 'Retry of' in landed.text
    assert load_job(api.app, 'stuck-1').state == 'REVOKED'
    assert len(published) == 1


def test_a_job_that_is_not_stuck_any_more_is_left_alone(api, published):
    put_worker(api.app, 'celery@alive')
    put_job(api.app, 'fine-1', 'STARTED', 'celery@alive')
    assert 'fine-1' not in api.get('/workers').text  # not listed as stuck
    refused = api.post('/workers/stuck/fine-1/rerun',
                       {'csrf_token': csrf_of(api)}, status=409)
    assert 'not stuck any more' in refused.text
    assert load_job(api.app, 'fine-1').state == 'STARTED'
    assert published == []


def csrf_of(api):
    page = api.get('/jobs')
    return page.html.find('input', {'name': 'csrf_token'})['value']


# -- queues ------------------------------------------------------------------

def test_queue_depths_come_from_the_broker(api):
    before = {q['name']: q['messages'] for q in
              api.get('/api/queues').json['queues']}
    assert before == {RUN_QUEUE: before.get(RUN_QUEUE, 0)}
    with celery_app.connection_for_write() as connection:
        producer = connection.Producer()
        for number in range(3):
            producer.publish({'n': number}, routing_key=RUN_QUEUE,
                             declare=[Queue(RUN_QUEUE)], serializer='json')
    [queue] = api.get('/api/queues').json['queues']
    assert queue == {'name': RUN_QUEUE,
                     'messages': before.get(RUN_QUEUE, 0) + 3,
                     'workers': []}


def test_queues_consumed_by_online_workers_are_listed_with_them(api):
    put_worker(api.app, 'celery@one', queues=[RUN_QUEUE, 'reports'])
    put_worker(api.app, 'celery@dead', silent_seconds=60, queues=['old'])
    queues = {q['name']: q['workers']
              for q in api.get('/api/queues').json['queues']}
    assert queues == {RUN_QUEUE: ['celery@one'], 'reports': ['celery@one']}


def test_a_broker_that_refuses_is_503_naming_it(tmp_path, initialize_db):
    ini = initialize_db(write_ini(
        tmp_path, broker='amqp://guest:s3cret@127.0.0.1:9//'))
    app = get_app(ini)
    client = webtest.TestApp(app)
    error = client.get('/api/queues', status=503).json
    assert error['error'] == 'the broker did not answer'
    assert 's3cret' not in str(error)
    page = client.get('/workers')
    assert 'The broker did not answer' in page.text and 's3cret' not in \
        page.text
    app.registry['dbsession_factory'].kw['bind'].dispose()


def test_the_page_lists_workers_queues_and_stuck_jobs(api):
    put_worker(api.app, 'celery@alive', processed=41, active=['job-a'])
    put_worker(api.app, 'celery@dead', silent_seconds=60)
    put_job(api.app, 'stuck-2', 'PROGRESS', 'celery@dead')
    page = api.get('/workers')
    assert '(1 online)' in page.text
    alive = page.html.find('tr', {'data-worker': 'celery@alive'})
    assert alive.find(attrs={'data-field': 'status'}).text == 'online'
    assert alive.find(attrs={'data-field': 'processed'}).text == '41'
    dead = page.html.find('tr', {'data-worker': 'celery@dead'})
    assert dead.find(attrs={'data-field': 'status'}).text == 'gone'
    assert page.html.find('tr', {'data-queue': RUN_QUEUE})
    assert page.html.find('tr', {'data-job-id': 'stuck-2'})
