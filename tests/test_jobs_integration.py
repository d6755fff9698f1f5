"""Jobs over HTTP with real workers: the embedded setup, Redis, RabbitMQ,
and a broker outage that the sweeper recovers from.

The API is called in this process (webtest); ``pceleryd`` runs the jobs.
"""
import pytest
import webtest
from pyramid.paster import get_app

from myapp import tasks
from myapp.jobs.tasks import send_unsent

from .jobs_support import (FAIL_FAST, FINISHED, UNREACHABLE_BROKER, load_job,
                           poll_job, set_state, wait_until)
from .support import Worker, require, write_ini

pytestmark = pytest.mark.worker


def start(api, task, *args, status=202, **fields):
    body = {'task': task, 'args': list(args), **fields}
    return api.post_json('/api/jobs', body, status=status).json['id']


def revoke(api, job_id, terminate=False):
    return api.post_json(f'/api/jobs/{job_id}/revoke',
                         {'terminate': terminate}, status=202).json


def logged(worker, *texts):
    """Wait until the worker logged one of ``texts``; return it."""
    return wait_until(lambda: next((text for text in texts
                                    if text in worker.output()), None),
                      what=f'one of {texts} in the worker log')


def check_round_trip(api):
    job = poll_job(api, start(api, 'myapp.tasks.add', 5, 10))
    assert (job['state'], job['result'], job['error']) == \
        ('SUCCESS', 15, None)
    assert job['worker'] and job['sent_at'] and job['started_at'] \
        and job['finished_at']


def check_revoked_while_queued_never_runs(api, worker):
    job_id = start(api, 'myapp.tasks.add', 1, 1, countdown=2)
    assert revoke(api, job_id)['state'] == 'REVOKED'
    # The broadcast reached the worker, or the start-time veto stopped it.
    logged(worker, f'Discarding revoked task: myapp.tasks.add[{job_id}]',
           f'myapp.tasks.add[{job_id}]: not run: the job is REVOKED')
    job = poll_job(api, job_id)
    assert (job['state'], job['started_at'], job['result']) == \
        ('REVOKED', None, None)


# -- the embedded setup ------------------------------------------------------

@pytest.fixture(scope='module')
def embedded(tmp_path_factory, initialize_db):
    ini = initialize_db(write_ini(tmp_path_factory.mktemp('jobs-embedded'),
                                  concurrency=3))
    with Worker(ini, '--loglevel', 'INFO') as worker:
        yield ini, worker


@pytest.fixture
def api(embedded):
    """The API of the app the embedded worker serves (conftest's ``api``
    has no worker)."""
    return webtest.TestApp(get_app(embedded[0]))


@pytest.fixture
def worker(embedded):
    return embedded[1]


def test_a_job_started_over_http_runs(api):
    check_round_trip(api)


def test_progress_moves_while_slow_add_runs(api):
    job_id = start(api, 'myapp.tasks.slow_add', 2, 3, kwargs={'seconds': 3})
    seen = set()

    def finished():
        job = api.get(f'/api/jobs/{job_id}').json
        if job['state'] == 'PROGRESS':
            seen.add(job['progress']['current'])
        return job if job['state'] == 'SUCCESS' else None

    job = wait_until(finished, what='slow_add to finish')
    assert len(seen) >= 2  # it was seen moving
    assert (job['result'], job['progress']) == \
        (5, {'current': 3, 'total': 3, 'message': 'done'})


def test_a_job_revoked_while_queued_never_runs(api, worker):
    check_revoked_while_queued_never_runs(api, worker)


def test_a_revoke_that_no_worker_heard_still_stops_the_job(api, worker):
    """What a broker without broadcast (kombu's SQLAlchemy transport) gives:
    only the row says REVOKED; the worker checks it as the job starts."""
    job_id = start(api, 'myapp.tasks.add', 1, 1, countdown=2)
    set_state(api.app, job_id, 'REVOKED')
    worker.wait_for(f'myapp.tasks.add[{job_id}]: not run: the job is '
                    'REVOKED')
    assert load_job(api.app, job_id).started_at is None


def running_slow_add(api):
    job_id = start(api, 'myapp.tasks.slow_add', 1, 1,
                   kwargs={'seconds': 60})
    poll_job(api, job_id, until=lambda job: job['state'] == 'PROGRESS')
    return job_id


def test_a_running_job_revoked_stops_at_its_next_progress(api, worker):
    job_id = running_slow_add(api)
    revoke(api, job_id)
    # report_progress raised TaskCancelled: the run ended REVOKED.
    wait_until(lambda: tasks.slow_add.AsyncResult(job_id).state == 'REVOKED',
               what='the run to end')
    job = poll_job(api, job_id)
    assert job['state'] == 'REVOKED' and job['progress']['current'] < 60
    assert 'Terminating' not in worker.output()


def test_a_running_job_revoked_with_terminate_is_killed(api, worker):
    job_id = running_slow_add(api)
    revoke(api, job_id, terminate=True)
    logged(worker, f'Terminating {job_id}')
    wait_until(lambda: tasks.slow_add.AsyncResult(job_id).state == 'REVOKED',
               what='the run to end')
    assert poll_job(api, job_id)['state'] == 'REVOKED'


def test_jobs_sent_from_pshell_code_are_recorded(api):
    job_id = tasks.mul.delay(6, 7).id  # no transaction: sent at once
    # The sender's journal writes its row a few milliseconds after the send;
    # a worker quicker than that records the job itself as it starts it
    # (origin ``worker:HOST``) and the journal's row then adds the origin.
    job = poll_job(api, job_id, until=lambda job: job['state'] in FINISHED
                   and not job['origin'].startswith('worker:'))
    assert (job['origin'], job['state'], job['result']) == \
        ('shell', 'SUCCESS', 42)


# -- other brokers ---------------------------------------------------------

@pytest.mark.services
@pytest.mark.parametrize('broker', ['redis', 'rabbitmq'])
def test_jobs_over_http_on_a_server_broker(tmp_path, initialize_db, broker):
    require(broker)
    ini = initialize_db(write_ini(tmp_path, broker=broker))
    with Worker(ini) as worker:
        api = webtest.TestApp(get_app(ini))
        check_round_trip(api)
        check_revoked_while_queued_never_runs(api, worker)


# -- a broker outage -------------------------------------------------------

def test_a_job_asked_for_during_an_outage_runs_once_the_sweeper_sends_it(
        tmp_path, initialize_db, published):
    database = f'sqlite:///{tmp_path}/myapp.sqlite'
    (tmp_path / 'down').mkdir()
    down = write_ini(tmp_path / 'down', broker=UNREACHABLE_BROKER,
                     database=database, celery=FAIL_FAST)
    up = initialize_db(write_ini(tmp_path, database=database))

    job_id = start(webtest.TestApp(get_app(down)), 'myapp.tasks.add', 2, 2)
    assert published == []
    with Worker(up) as worker:
        api = webtest.TestApp(get_app(up))
        assert api.get(f'/api/jobs/{job_id}').json['sent_at'] is None
        assert send_unsent.apply(kwargs={'older_than_seconds': 0}).get() == 1
        assert send_unsent.apply(kwargs={'older_than_seconds': 0}).get() == 0
        job = poll_job(api, job_id)
        assert (job['state'], job['result']) == ('SUCCESS', 4)
        assert published == [job_id]
        assert worker.output().count(f'myapp.tasks.add[{job_id}] succeeded') \
            == 1
