"""Helpers of the jobs tests (tests/test_jobs_*.py, test_job_pages.py);
their fixtures (``app``, ``api``) are in conftest.py.
"""
import contextlib
import datetime
import time

from celery.app.trace import build_tracer
from pyramid.paster import get_app
from sqlalchemy import delete, select

from myapp.celery_integration.scripting import request_in_transaction
from myapp.jobs import journal
from myapp.models import Job
from myapp.models.types import utcnow

FINISHED = ('SUCCESS', 'FAILURE', 'REVOKED')
#: A broker nobody listens on, and kombu told to give up at once: one
#: retry, 0.1 s apart (its default is 3 retries, and redis-py's client
#: retries on its own when publish retries are turned off altogether).
UNREACHABLE_BROKER = 'redis://127.0.0.1:1/0'
FAIL_FAST = """
    broker_connection_timeout = 1
    task_publish_retry_policy = {"max_retries": 1, "interval_start": 0, "interval_step": 0.1, "interval_max": 0.1}
    """


@contextlib.contextmanager
def transaction_of(app):
    """A request of ``app`` (or of a request's registry) with an open
    transaction, as in a view or ``with tm:``; this process's journal
    written out first, so that it sees the jobs sent outside a transaction
    (which the journal writes a few milliseconds later)."""
    journal.flush()
    with request_in_transaction(app.registry) as request:
        yield request


def run_as_worker(task, job_id, args, **request):
    """Run ``task`` as a worker's pool process does (Celery's tracer, not
    eager as ``Task.apply`` is), in this process; its trace's result."""
    tracer = build_tracer(task.name, task, app=task.app,
                          hostname='w1@host')
    request = {'id': job_id, 'task': task.name, 'args': list(args),
               'kwargs': {}, 'hostname': 'w1@host', 'retries': 0,
               'is_eager': False, 'delivery_info': {'redelivered': False},
               **request}
    return tracer(job_id, list(args), {}, request)


def load_job(app, job_id):
    """The job's row as committed (a fresh session), or None."""
    with transaction_of(app) as request:
        job = request.dbsession.get(Job, job_id)
        if job is not None:
            request.dbsession.expunge(job)
        return job


def all_jobs(app):
    with transaction_of(app) as request:
        jobs = request.dbsession.scalars(select(Job)).all()
        request.dbsession.expunge_all()
        return jobs


def put_job(app, job_id, state='PENDING', **columns):
    """A job row as a test needs it (``myapp.tasks.add(2, 3)`` sent over
    HTTP, but for ``columns``), created a second ago: one put after it
    is newer."""
    columns = {'task_name': 'myapp.tasks.add', 'args': [2, 3], 'kwargs': {},
               'options': {}, 'origin': 'http', **columns}
    with transaction_of(app) as request:
        request.dbsession.add(Job(id=job_id, state=state, created_at=utcnow()
                                  - datetime.timedelta(seconds=1), **columns))
    return job_id


def set_state(app, job_id, state, **columns):
    """Change a row behind the API's back (another process, a broker
    without broadcast...)."""
    with transaction_of(app) as request:
        job = request.dbsession.get(Job, job_id)
        job.state = state
        for name, value in columns.items():
            setattr(job, name, value)


def wait_until(check, timeout=30, interval=0.1, what='the condition'):
    """Poll ``check()`` until it returns something true; return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f'{what} not reached in {timeout}s '
                                 f'(last: {value!r})')
        time.sleep(interval)


def poll_job(api, job_id, until=lambda job: job['state'] in FINISHED,
             timeout=30):
    """GET the job until ``until(job)``; return it."""
    last = {}

    def check():
        # A job sent outside a transaction is written by the sender's
        # journal a few milliseconds later: 404 until then.
        response = api.get(f'/api/jobs/{job_id}', status=(200, 404))
        if response.status_int == 404:
            return None
        last['job'] = response.json
        return last['job'] if until(last['job']) else None

    try:
        return wait_until(check, timeout, what=f'job {job_id}')
    except AssertionError as exc:
        raise AssertionError(f'{exc}: {last.get("job")}') from None


def clean_schedules_app(ini):
    """The app of ``ini``, its jobs emptied and its periodic jobs those of
    the ini's sections, as beat leaves them when it starts."""
    from myapp.models import PeriodicJob
    from myapp.schedules import store

    app = get_app(ini)
    with transaction_of(app) as request:
        request.dbsession.execute(delete(Job))
        request.dbsession.execute(delete(PeriodicJob))
        store.synchronise_ini(request.dbsession, ini)
    return app
