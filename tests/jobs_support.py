"""Helpers and fixtures of the jobs tests (tests/test_jobs_*.py).

A module uses the fixtures by importing them, with those they depend on:
``from .jobs_support import api, jobs_app, module_ini``.
"""
import contextlib
import time

import pytest
import transaction
import webtest
from pyramid.paster import get_app
from pyramid.scripting import prepare
from sqlalchemy import delete, select

from myapp.models import Job

from .support import initialize_db, write_ini

FINISHED = ('SUCCESS', 'FAILURE', 'REVOKED')


@pytest.fixture(scope='module')
def module_ini(tmp_path_factory):
    """An ini on an in-memory broker, with one database per test module
    (creating a database is what costs; an app takes milliseconds)."""
    ini = write_ini(tmp_path_factory.mktemp('jobs'), broker='memory')
    initialize_db(ini)
    return ini


@pytest.fixture
def jobs_app(module_ini):
    """The app, with an empty jobs table, and Celery configured for it."""
    app = get_app(module_ini)
    with transaction_of(app) as request:
        request.dbsession.execute(delete(Job))
    return app


@pytest.fixture
def api(jobs_app):
    return webtest.TestApp(jobs_app)


@contextlib.contextmanager
def transaction_of(app):
    """A request of ``app`` (or of a request's registry) with an open
    transaction, as in a view or ``with tm:``."""
    env = prepare(registry=app.registry)
    request = env['request']
    request.tm = transaction.TransactionManager(explicit=True)
    try:
        with request.tm:
            yield request
    finally:
        env['closer']()


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
        last['job'] = api.get(f'/api/jobs/{job_id}').json
        return last['job'] if until(last['job']) else None

    try:
        return wait_until(check, timeout, what=f'job {job_id}')
    except AssertionError as exc:
        raise AssertionError(f'{exc}: {last.get("job")}') from None
