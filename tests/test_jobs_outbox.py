"""Sending loses nothing: the outbox, its sweeper, and the history purge.

A broker that refuses connections (a closed localhost port) stands for an
outage; the sweeper then sends with a working (in-memory) broker.  The
real-worker version is in tests/test_jobs_integration.py.
"""
import datetime
import logging

import pytest
import webtest
from celery import signals
from pyramid.paster import get_app
from sqlalchemy import delete, select

from myapp.celery_integration import WorkerReady
from myapp.celery_integration.events import notify_in_own_transaction
from myapp import tasks
from myapp.jobs import outbox, sweeper
from myapp.jobs.tasks import purge_history, send_unsent
from myapp.models import Job
from myapp.models.types import utcnow

from .jobs_support import (FAIL_FAST, UNREACHABLE_BROKER, all_jobs,
                           load_job, transaction_of, wait_until)
from .support import write_ini


def add_job(app, age_seconds=60, task_name='myapp.tasks.add', args=(1, 2),
            **columns):
    """An unsent job, as a failed after-commit send leaves it."""
    job_id = f'job-{len(all_jobs(app))}'
    columns = {'kwargs': {}, 'options': {}, 'origin': 'test', **columns}
    job = Job(id=job_id, task_name=task_name, args=list(args),
              created_at=utcnow() - datetime.timedelta(seconds=age_seconds),
              **columns)
    with transaction_of(app) as request:
        request.dbsession.add(job)
    return job_id


def sweep(**kwargs):
    return send_unsent.apply(kwargs=kwargs).get()


# -- a broker outage ---------------------------------------------------------

@pytest.fixture
def outage(tmp_path, initialize_db):
    """(an app whose broker is down, an app on a working broker), sharing
    one database."""
    database = f'sqlite:///{tmp_path}/myapp.sqlite'
    (tmp_path / 'down').mkdir()
    (tmp_path / 'up').mkdir()
    down = write_ini(tmp_path / 'down', broker=UNREACHABLE_BROKER,
                     database=database, celery=FAIL_FAST)
    up = initialize_db(write_ini(tmp_path / 'up', broker='memory',
                                 database=database))
    return down, up


def test_a_job_asked_for_during_an_outage_is_sent_once_later(
        outage, published, caplog):
    down, up = outage
    api = webtest.TestApp(get_app(down))
    with caplog.at_level(logging.WARNING):
        job = api.post_json('/api/jobs', {'task': 'myapp.tasks.add',
                                          'args': [5, 10]}, status=202).json
    assert 'could not be sent after commit' in caplog.text
    assert published == []
    assert api.get(f'/api/jobs/{job["id"]}').json['sent_at'] is None

    app = get_app(up)  # the broker is back
    assert sweep(older_than_seconds=0) == 1
    assert sweep(older_than_seconds=0) == 0
    assert published == [job['id']]  # exactly once, with the same id
    assert load_job(app, job['id']).sent_at is not None


def test_the_sweeper_stops_at_the_first_failure(outage, published, caplog):
    down, up = outage
    app = get_app(down)
    first, second = add_job(app), add_job(app)
    with caplog.at_level(logging.WARNING):
        assert sweep() == 0
    assert caplog.text.count('still not sent') == 1
    assert [load_job(app, job).sent_at for job in (first, second)] == \
        [None, None]


# -- what the sweeper sends ----------------------------------------------

def test_it_sends_with_the_stored_arguments_and_options(app, published):
    eta = utcnow() + datetime.timedelta(hours=1)
    job_id = add_job(app, options={'eta': eta.isoformat(),
                                   'queue': 'celery'},
                     args=(3, 4))
    sent_messages = []

    def record(headers=None, body=None, **kwargs):
        sent_messages.append((headers, body))

    signals.after_task_publish.connect(record, weak=False)
    try:
        assert sweep() == 1
    finally:
        signals.after_task_publish.disconnect(record)
    (headers, body), = sent_messages
    assert headers['id'] == job_id and headers['eta'] == eta.isoformat()
    assert body[0] == [3, 4]


def test_young_revoked_and_sent_jobs_are_left_alone(app, published):
    add_job(app, age_seconds=1)                  # may still be sending
    add_job(app, state='REVOKED')
    add_job(app, sent_at=utcnow())
    assert sweep() == 0
    assert published == []


def test_a_job_whose_task_is_gone_fails(app, published):
    job_id = add_job(app, task_name='myapp.tasks.renamed')
    assert sweep() == 0
    job = load_job(app, job_id)
    assert (job.state, job.error_type) == \
        ('FAILURE', 'celery.exceptions.NotRegistered')


def test_a_worker_start_sweeps_at_once_then_every_interval(
        app, published, monkeypatch):
    monkeypatch.delitem(app.registry, sweeper.SWEEPER, raising=False)
    monkeypatch.setitem(app.registry, 'jobs.lease_seconds',
                        datetime.timedelta(seconds=0.2))
    first = add_job(app)
    notify_in_own_transaction(app.registry, WorkerReady, 'w1@host')
    try:
        wait_until(lambda: published == [first], timeout=10)
        second = add_job(app)
        wait_until(lambda: published == [first, second], timeout=10)
    finally:
        app.registry[sweeper.SWEEPER].stop()


@pytest.mark.services
def test_on_postgresql_a_locked_job_is_skipped_not_sent_twice(
        tmp_path, postgres_database, published):
    ini = write_ini(tmp_path, broker='memory', database='postgresql')
    app = get_app(ini)
    with transaction_of(app) as request:
        request.dbsession.execute(delete(Job))
    locked, free = add_job(app), add_job(app)
    with transaction_of(app) as other_sweeper:
        other_sweeper.dbsession.scalars(
            select(Job).where(Job.id == locked).with_for_update()).all()
        assert sweep() == 1  # skipped the locked one, did not wait for it
    assert published == [free]
    assert sweep() == 1
    assert published == [free, locked]


# -- purging the history -------------------------------------------------

def test_purge_deletes_only_jobs_finished_long_enough_ago(app):
    old = utcnow() - datetime.timedelta(days=31)
    kept = [add_job(app, state='SUCCESS', finished_at=utcnow()),
            add_job(app, state='PENDING'),
            add_job(app, state='STARTED', age_seconds=40 * 86400)]
    for state in ('SUCCESS', 'FAILURE', 'REVOKED'):
        add_job(app, state=state, finished_at=old)
    assert purge_history.apply((30,)).get() == 3
    assert sorted(job.id for job in all_jobs(app)) == sorted(kept)


def test_purge_refuses_a_negative_age(app):
    assert purge_history.apply((-1,)).failed()


# -- jobs due far off wait here, not in the broker ---------------------------

@pytest.mark.parametrize('in_transaction', [False, True])
def test_a_job_due_far_off_is_held_until_it_is_near(app, published,
                                                    in_transaction):
    if in_transaction:
        with transaction_of(app):
            job_id = tasks.add.apply_async((1, 2), countdown=3600).id
    else:
        job_id = tasks.add.apply_async((1, 2), countdown=3600).id
    job = load_job(app, job_id)
    assert published == [] and job.sent_at is None
    assert job.due_at - utcnow() > datetime.timedelta(seconds=3590)
    assert sweep() == 0 and published == []
    near = utcnow() + outbox.HOLD_BEYOND - datetime.timedelta(seconds=1)
    with transaction_of(app) as request:
        request.dbsession.get(Job, job_id).due_at = near
    assert sweep() == 1 and published == [job_id]


def test_a_job_due_soon_goes_to_the_broker_at_once(app, published):
    job_id = tasks.add.apply_async((1, 2), countdown=5).id
    assert published == [job_id]
    assert load_job(app, job_id).due_at is None


def test_a_held_job_revoked_is_never_sent(app, api, published):
    job_id = tasks.add.apply_async((1, 2), countdown=3600).id
    api.post_json(f'/api/jobs/{job_id}/revoke', {}, status=202)
    with transaction_of(app) as request:
        request.dbsession.get(Job, job_id).due_at = utcnow()
    assert sweep() == 0 and published == []
