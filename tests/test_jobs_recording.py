"""Every job is recorded, however it was sent; its row follows its life.

Runs are in-process (``Task.apply(task_id=...)`` stands in for a worker)
against the app and a real kombu in-memory broker.
"""
import datetime
import uuid

import pytest
import sqlalchemy.exc
from celery import states
from kombu.exceptions import EncodeError
from sqlalchemy import event

from myapp import tasks
from myapp.celery_integration import task
from myapp.jobs import journal, lifecycle
from myapp.models import Job
from myapp.models.types import utcnow

from .jobs_support import (all_jobs, load_job, run_as_worker, set_state,
                           transaction_of)

calls = []


@task
def counts_to(request, steps, revoke_at=None):
    """Reports each step; revokes its own job at ``revoke_at``, as the API
    would from another process."""
    for step in range(1, steps + 1):
        calls.append(step)
        if step == revoke_at:
            with transaction_of(request) as other:
                lifecycle.revoke(other.dbsession,
                                 request.celery_task.request.id)
        request.report_progress(step, steps, f'step {step}')
    return steps


@task(max_retries=2)
def locked_once(request):
    calls.append('run')
    if len(calls) == 1:
        raise sqlalchemy.exc.OperationalError(
            'UPDATE', {}, Exception('database is locked'))
    return 'done'


@task
def breaks(request):
    raise KeyError('x' * 20000)


@task
def sends_another(request):
    return tasks.add.delay(1, 2).id


@pytest.fixture(autouse=True)
def reset_calls():
    calls.clear()


def queued(task, *args, **options):
    """Send as a caller would; the job is recorded and, here, never run."""
    return task.apply_async(args, **options).id


def run(task, job_id, *args, **kwargs):
    """Run the recorded job as a worker would."""
    return task.apply(args, kwargs, task_id=job_id)


# -- from enqueued to finished -------------------------------------------

def test_a_job_is_recorded_when_sent_and_finishes_with_its_result(app):
    job_id = queued(tasks.add, 2, 3)
    job = load_job(app, job_id)
    assert (job.task_name, job.state, job.args, job.origin) == \
        ('myapp.tasks.add', 'PENDING', [2, 3], 'shell')
    assert job.sent_at is not None and job.created_at.tzinfo is not None
    run(tasks.add, job_id, 2, 3)
    job = load_job(app, job_id)
    assert (job.state, job.result, job.error_type) == ('SUCCESS', 5, None)
    assert job.started_at <= job.finished_at


def test_a_run_costs_the_history_two_statements(app):
    """Its start and its success, one statement each: no transaction of
    their own around them (:mod:`myapp.jobs.autocommit`)."""
    job_id = queued(tasks.add, 2, 3)
    journal.flush()
    engine = app.registry['dbsession_factory'].kw['bind']
    statements = []

    def executed(connection, cursor, statement, *args):
        statements.append((statement.split()[0], connection
                           .get_execution_options().get('isolation_level')))

    event.listen(engine, 'before_cursor_execute', executed)
    try:
        run(tasks.add, job_id, 2, 3)
    finally:
        event.remove(engine, 'before_cursor_execute', executed)
    assert statements == [('UPDATE', 'AUTOCOMMIT')] * 2
    assert load_job(app, job_id).state == 'SUCCESS'


def test_a_failure_keeps_the_error_and_the_end_of_its_traceback(app):
    job_id = queued(breaks)
    run(breaks, job_id)
    job = load_job(app, job_id)
    assert (job.state, job.error_type) == ('FAILURE', 'KeyError')
    assert job.error_message.startswith("'xxx") and \
        len(job.error_message) <= 2048
    assert len(job.error_traceback) <= 8192
    assert job.error_traceback.rstrip().endswith("x'")  # the end is kept


def test_a_retry_is_recorded_then_the_success(app):
    job_id = queued(locked_once)
    run(locked_once, job_id)
    job = load_job(app, job_id)
    assert (job.state, job.retries, job.result) == ('SUCCESS', 1, 'done')
    assert job.error_type is None  # the retried error is cleared


def test_progress_is_recorded(app):
    job_id = queued(counts_to, 3)
    run(counts_to, job_id, 3)
    job = load_job(app, job_id)
    assert (job.progress_current, job.progress_total,
            job.progress_message) == (3, 3, 'step 3')


def test_a_job_revoked_while_running_stops_at_its_next_progress(app):
    job_id = queued(counts_to, 5, revoke_at=2)
    result = run(counts_to, job_id, 5, revoke_at=2)
    assert calls == [1, 2]
    assert result.state == states.IGNORED
    assert tasks.add.AsyncResult(job_id).state == states.REVOKED
    job = load_job(app, job_id)
    assert (job.state, job.progress_current) == ('REVOKED', 1)
    assert job.finished_at is not None


# -- starting is a compare-and-set ---------------------------------------

def test_a_job_revoked_while_queued_never_runs(app):
    job_id = queued(counts_to, 2)
    set_state(app, job_id, 'REVOKED')
    result = run(counts_to, job_id, 2)
    assert calls == [] and result.state == states.IGNORED
    assert load_job(app, job_id).state == 'REVOKED'


def test_a_copy_of_a_job_that_succeeded_gives_its_result_to_callers(app):
    """Its run committed, then its worker died before Celery stored the
    result: the copy runs nothing and stores the recorded result."""
    job_id = queued(counts_to, 2)
    set_state(app, job_id, 'SUCCESS', result=2)
    assert counts_to.AsyncResult(job_id).state == states.PENDING
    run(counts_to, job_id, 2)
    assert calls == []
    assert counts_to.AsyncResult(job_id).get(timeout=5) == 2


def test_a_second_delivery_does_not_run_it_again(app):
    job_id = queued(counts_to, 1)
    run(counts_to, job_id, 1)
    run(counts_to, job_id, 1)
    assert calls == [1]
    assert load_job(app, job_id).state == 'SUCCESS'


LEASE_ALIVE = datetime.timedelta(seconds=20)
LEASE_EXPIRED = datetime.timedelta(seconds=-1)


@pytest.mark.parametrize('state, recorded, retries, lease, runs', [
    ('PENDING', 0, 0, None, True),
    ('RETRY', 1, 1, None, True),
    ('RETRY', 2, 1, None, False),    # a stale copy of a failed attempt
    ('STARTED', 0, 0, LEASE_ALIVE, False),  # a duplicate message
    ('PROGRESS', 0, 0, LEASE_ALIVE, False),
    ('STARTED', 0, 0, LEASE_EXPIRED, True),    # its worker died
    ('PROGRESS', 0, 0, LEASE_EXPIRED, True),
    ('STARTED', 0, 1, LEASE_ALIVE, True),   # a retry sent before TaskRetrying
    ('SUCCESS', 0, 0, None, False),
    ('FAILURE', 0, 1, None, False),
    ('REVOKED', 0, 0, None, False),
])
@pytest.mark.parametrize('unrecorded', [
    None,  # Task.apply(): the claim alone
    # A worker's: the claim, or the job recorded if it had no row.
    {'task_name': 'myapp.tasks.add', 'args': [1, 1], 'kwargs': {}}])
def test_start_claims_only_a_job_that_may_run(app, state, recorded,
                                              retries, lease, runs,
                                              unrecorded):
    job_id = queued(tasks.add, 1, 1)
    expires = None if lease is None else utcnow() + lease
    set_state(app, job_id, state, retries=recorded, lease_expires_at=expires)
    with transaction_of(app) as request:
        refusal = lifecycle.start(request.dbsession, job_id, 'w1', retries,
                                  unrecorded)
    assert (refusal is None) == runs
    job = load_job(app, job_id)
    if runs:
        assert (job.state, job.worker, job.retries) == \
            ('STARTED', 'w1', retries)
        assert job.lease_expires_at > utcnow() + LEASE_ALIVE
    else:
        assert refusal == f'the job is {state}' and job.state == state


def test_a_retry_of_a_revoked_job_stays_revoked(app):
    job_id = queued(tasks.add, 1, 1)
    set_state(app, job_id, 'REVOKED')
    with transaction_of(app) as request:
        lifecycle.retrying(request.dbsession, job_id, ValueError('x'), 1)
    assert load_job(app, job_id).state == 'REVOKED'


def test_unknown_ids_are_ignored(app):
    assert tasks.add.apply((1, 2)).get() == 3  # never recorded: runs
    assert counts_to.apply((2,)).get() == 2
    assert all_jobs(app) == []
    with transaction_of(app) as request:
        assert lifecycle.start(request.dbsession, 'nope', 'w', 0) is None
        assert lifecycle.record_progress(request.dbsession, 'nope', 1, 2,
                                         '') is False
        assert lifecycle.revoke(request.dbsession, 'nope') is False


def test_a_job_no_sender_recorded_is_recorded_when_a_worker_starts_it(app):
    # celery call, Flower's send-task: the worker knows the job as it starts.
    unrecorded = {'task_name': 'myapp.tasks.add', 'args': [2, 3],
                  'kwargs': {}}
    with transaction_of(app) as request:
        assert lifecycle.start(request.dbsession, 'from-celery-call',
                               'celery@host', 0, unrecorded) is None
    job = load_job(app, 'from-celery-call')
    assert (job.task_name, job.args, job.state, job.origin, job.worker) == \
        ('myapp.tasks.add', [2, 3], 'STARTED', 'worker:celery@host',
         'celery@host')
    with transaction_of(app) as request:  # a second delivery of it
        assert lifecycle.start(request.dbsession, 'from-celery-call',
                               'celery@host', 0, unrecorded) == \
            'the job is STARTED'


# -- however it was sent ---------------------------------------------------

def test_sent_from_a_task_names_its_parent(app):
    parent = sends_another.apply()
    child = load_job(app, parent.get())
    assert (child.origin, child.parent_id) == \
        (f'task:{parent.id}', parent.id)


def test_sent_by_beat_or_http_keeps_its_origin(app):
    job_id = queued(tasks.add, 1, 1, origin='beat:every_minute')
    assert load_job(app, job_id).origin == 'beat:every_minute'


def test_sent_in_a_transaction_it_commits_with_it(app, published):
    with transaction_of(app):
        job_id = queued(tasks.add, 1, 1, origin='http')
        assert published == []
    assert published == [job_id]
    assert load_job(app, job_id).sent_at is not None


def test_the_jobs_a_transaction_sends_are_one_insert_at_its_commit(
        app, published):
    """Not one INSERT a send, and not before the commit: on SQLite the
    first write locks the database for every other writer (a worker's
    claim) until the commit."""
    engine = app.registry['dbsession_factory'].kw['bind']
    inserted = []  # the ids each INSERT wrote

    def executed(connection, cursor, statement, parameters, context,
                 executemany):
        rows = parameters if executemany else [parameters]
        inserted.append(sorted(value for row in rows for value in row
                               if value in job_ids + ['other']))

    job_ids = []
    event.listen(engine, 'before_cursor_execute', executed)
    try:
        with transaction_of(app):
            job_ids += [queued(tasks.add, i, i, origin='http')
                        for i in range(3)]
            assert inserted == []
            # Another writer is not kept waiting meanwhile.
            with engine.begin() as other:
                other.execute(Job.__table__.insert().values(
                    id='other', task_name='x', origin='x', args=[],
                    kwargs={}, options={}, state='PENDING', retries=0,
                    lost_runs=0, created_at=utcnow()))
    finally:
        event.remove(engine, 'before_cursor_execute', executed)
    assert inserted == [['other'], sorted(job_ids)]
    assert published == job_ids
    assert {job.id: job.args for job in all_jobs(app)} == {
        'other': [], **{job_id: [i, i] for i, job_id in enumerate(job_ids)}}


def test_an_aborted_transaction_leaves_no_row_and_sends_nothing(
        app, published):
    with pytest.raises(ZeroDivisionError):
        with transaction_of(app) as request:
            request.dbsession.add(Job(id='mine', task_name='x', origin='x'))
            queued(tasks.add, 1, 1)
            1 / 0
    assert published == [] and all_jobs(app) == []


def test_only_plain_options_are_kept_with_relative_times_made_absolute(
        app):
    from myapp.celery_integration import celery_app
    with celery_app.producer_or_acquire() as producer:
        job_id = queued(tasks.add, 1, 1, countdown=60, expires=120,
                        priority=3, producer=producer)
    job = load_job(app, job_id)
    assert set(job.options) == {'eta', 'expires', 'priority'}
    eta = datetime.datetime.fromisoformat(job.options['eta'])
    assert 59 <= (eta - job.created_at).total_seconds() <= 61


def test_arguments_are_kept_as_sent_and_only_plain_json_is_sent(app):
    job_id = queued(tasks.xsum, [1, 2.5, 'three', None, {'four': [4]}])
    assert load_job(app, job_id).args == \
        [[1, 2.5, 'three', None, {'four': [4]}]]
    # kombu would have carried it as {"__type__": "datetime", ...}: refused.
    when = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
    with pytest.raises(EncodeError, match='must be plain JSON'):
        queued(tasks.xsum, [when])
    assert len(all_jobs(app)) == 1


def test_a_row_written_while_the_claim_looks_is_claimed(app, monkeypatch):
    """The sender's journal writes the row between the claim's UPDATE (no
    row yet) and its SELECT: the run claims it, it is not skipped."""
    job_id = queued(tasks.add, 1, 1)
    set_state(app, job_id, 'STARTED')  # as if not there for the UPDATE
    real_state_of = lifecycle.state_of

    def appears(dbsession, job_id):
        dbsession.execute(lifecycle.update(Job).where(Job.id == job_id)
                          .values(state='PENDING'))
        return real_state_of(dbsession, job_id)

    monkeypatch.setattr(lifecycle, 'state_of', appears)
    with transaction_of(app) as request:
        assert lifecycle.start(request.dbsession, job_id, 'w1', 0) is None
    assert load_job(app, job_id).state == 'STARTED'


@pytest.mark.services
def test_on_postgresql_a_job_no_sender_recorded_is_recorded_and_run_once(
        tmp_path, postgres_database):
    from pyramid.paster import get_app

    from .support import write_ini

    pg_app = get_app(write_ini(tmp_path, broker='memory',
                               database='postgresql'))
    unrecorded = {'task_name': 'myapp.tasks.add', 'args': [2, 3],
                  'kwargs': {}}
    job_id = str(uuid.uuid4())
    for delivery, expected in ((1, None), (2, 'the job is STARTED')):
        with transaction_of(pg_app) as request:
            assert lifecycle.start(request.dbsession, job_id, 'w1@host', 0,
                                   unrecorded) == expected, delivery
    job = load_job(pg_app, job_id)
    assert (job.state, job.origin) == ('STARTED', 'worker:w1@host')


# -- a worker's run that wrote nothing ------------------------------------

@pytest.fixture
def held_journal(app):
    """The app's journal in this process, writing only when told to."""
    current = journal.Journal(app.registry['dbsession_factory'],
                              interval=3600)
    app.registry[journal.JOURNAL] = current
    return current


def test_the_success_of_a_run_that_wrote_nothing_goes_to_the_journal(
        app, held_journal):
    job_id = tasks.add.apply_async((2, 3)).id
    trace = run_as_worker(tasks.add, job_id, (2, 3))
    assert trace.retval == 5
    # Claimed at once; its success waits in the journal, the result is in
    # the result backend (from where a lost success is recovered).
    assert job_id in held_journal.successes
    assert load_job(app, job_id).state == 'STARTED'
    assert tasks.add.AsyncResult(job_id).get(timeout=5) == 5
    held_journal.flush()
    job = load_job(app, job_id)
    assert (job.state, job.result, job.lease_expires_at) == \
        ('SUCCESS', 5, None)
    assert job.finished_at >= job.started_at


@pytest.mark.parametrize('options', [
    {'ignore_result': True},  # the backend will not have it
])
def test_a_success_the_backend_will_not_keep_is_written_at_once(
        app, held_journal, options):
    job_id = tasks.add.apply_async((2, 3)).id
    run_as_worker(tasks.add, job_id, (2, 3), **options)
    assert held_journal.successes == {}
    assert load_job(app, job_id).state == 'SUCCESS'


def test_a_run_that_wrote_commits_its_success_with_its_writes(
        app, held_journal):
    job_id = tasks.record_sum.apply_async(([2, 3],)).id
    run_as_worker(tasks.record_sum, job_id, ([2, 3],))
    assert held_journal.successes == {}
    assert load_job(app, job_id).state == 'SUCCESS'


def test_a_pool_process_that_exits_writes_its_journal_first(app):
    """Celery's pool processes end with ``os._exit`` (no ``atexit``): the
    journal is written on ``worker_process_shutdown``."""
    from celery import signals

    current = journal.journal(app.registry)
    current.interval = 3600  # its thread would not write it before long
    job_id = tasks.add.apply_async((2, 3)).id
    current.flush()
    run_as_worker(tasks.add, job_id, (2, 3))
    assert job_id in current.successes
    signals.worker_process_shutdown.send(sender='celery@host', pid=1234,
                                         exitcode=0)
    assert current.successes == {}
    assert load_job(app, job_id).state == 'SUCCESS'


@pytest.mark.parametrize('value', [
    [1, 'two', 3.5, True, None], (1, 2), {'a': 1, 'b': None}, [], {},
    [[1]], {'nested': {'a': 1}}, {1: 'int key'}, [datetime.date(2030, 1, 2)],
    [float('inf')]])
def test_a_row_keeps_a_copy_of_what_celery_would_carry(value):
    """Flat arguments are copied without a JSON round trip, to the same
    result; the sender changing them afterwards changes nothing kept."""
    import json

    from kombu.utils.json import dumps

    from myapp.jobs.values import jsonable

    kept = jsonable(value)
    assert kept == json.loads(dumps(value))  # as before the fast path
    if isinstance(value, (list, dict)):
        assert kept is not value


def test_a_job_sent_in_the_transaction_is_shown_from_its_row_to_be(
        app, published):
    """Its row is one of the commit's INSERT, with the caller's changes; a
    job sent before is loaded and changed as usual."""
    from myapp.jobs.recording import recorded_job

    earlier = queued(tasks.add, 1, 1)
    with transaction_of(app) as request:
        job_id = queued(tasks.add, 2, 3, origin='http')
        shown = recorded_job(request, job_id, retry_of='first-try')
        assert (shown.id, shown.args, shown.retry_of, shown.state) == \
            (job_id, [2, 3], 'first-try', 'PENDING')
        assert shown not in request.dbsession
        loaded = recorded_job(request, earlier, retry_of='another')
        assert loaded in request.dbsession
    assert load_job(app, job_id).retry_of == 'first-try'
    assert load_job(app, earlier).retry_of == 'another'
