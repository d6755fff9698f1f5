"""The lean path's statements on the driver's cursor (myapp.jobs.precompiled):
the same rows, values and errors as through SQLAlchemy."""
import datetime
import uuid

import pytest
import sqlalchemy.exc
from sqlalchemy import delete, event, text

from myapp.celery_integration import Origin
from myapp.jobs import lifecycle, precompiled
from myapp.jobs.autocommit import autocommit, autocommit_engine
from myapp.models import Job
from myapp.models.types import UTC

from .jobs_support import load_job, put_job, transaction_of
from .support import write_ini

UNRECORDED = {'task_name': 'myapp.tasks.add', 'args': [2, 3],
              'kwargs': {'z': [1, {'deep': None}]}}


def new_id():
    return f'pc-{uuid.uuid4().hex}'  # 35 characters, as an id may be


@pytest.fixture
def pg_app(tmp_path, postgres_database):
    """The app on the run's PostgreSQL database; the jobs made here are
    deleted after (a later test's sweeper would take up a started one)."""
    from pyramid.paster import get_app

    app = get_app(write_ini(tmp_path, broker='memory',
                            database='postgresql'))
    yield app
    with transaction_of(app) as request:
        request.dbsession.execute(
            delete(Job).where(Job.id.like('pc-%')))
    autocommit_engine(app.registry).dispose()
    app.registry['dbsession_factory'].kw['bind'].dispose()


@pytest.fixture(params=['sqlite', pytest.param('postgresql',
                                               marks=pytest.mark.services)])
def any_app(request):
    return request.getfixturevalue('app' if request.param == 'sqlite'
                                   else 'pg_app')


@pytest.fixture(autouse=True)
def nothing_compiled_yet():
    precompiled._COMPILED.clear()


def on_the_cursor(statement, dialect):
    """Was ``statement`` compiled for the cursor path on ``dialect``?"""
    return dialect in precompiled._COMPILED.get(statement, {})


def test_a_claim_and_a_success_run_on_the_cursor_with_sqlalchemys_values(
        any_app):
    registry = any_app.registry
    job_id = put_job(any_app, new_id())
    with autocommit(registry) as connection:
        dialect = connection.dialect.name
        assert lifecycle.start(connection, job_id, 'w1@host', 0,
                               UNRECORDED) is None
        # A second delivery finds it started: the row count says so.
        assert lifecycle.start(connection, job_id, 'w2@host', 0) == \
            'the job is STARTED'
    assert on_the_cursor(lifecycle.claim_or_record(dialect), dialect)
    assert on_the_cursor(lifecycle.claim(), dialect)
    started = load_job(any_app, job_id)
    # UTCDateTime's processing (naive UTC text on SQLite) was applied.
    assert started.started_at.tzinfo is UTC
    assert abs(started.lease_expires_at - started.started_at
               - lifecycle.LEASE) < datetime.timedelta(seconds=1)
    assert (started.state, started.worker) == ('STARTED', 'w1@host')
    with autocommit(registry) as connection:
        lifecycle.succeed(connection, job_id, {'sum': [5, None, 'ü']})
    assert on_the_cursor(lifecycle.success(), dialect)
    done = load_job(any_app, job_id)
    assert (done.state, done.result, done.lease_expires_at) == \
        ('SUCCESS', {'sum': [5, None, 'ü']}, None)
    assert done.finished_at.tzinfo is UTC


def test_a_job_no_sender_recorded_is_recorded_from_the_cursor(any_app):
    job_id = new_id()
    with autocommit(any_app.registry) as connection:
        assert lifecycle.start(connection, job_id, 'w1@host', 0,
                               UNRECORDED) is None
    job = load_job(any_app, job_id)
    assert (job.state, job.args, job.kwargs, job.origin) == \
        ('STARTED', [2, 3], UNRECORDED['kwargs'], 'worker:w1@host')


def test_the_row_a_transaction_sends_is_inserted_from_the_cursor(any_app):
    """One row (a view's send) on the cursor; several through SQLAlchemy,
    in one statement; either way, the values as stored by SQLAlchemy."""
    alone, *together = new_id(), new_id(), new_id()
    options = {'queue': 'reports', 'eta': '2026-12-24T08:00:00+00:00'}
    for sent in ([alone], together):
        with transaction_of(any_app) as request:
            dialect = request.dbsession.bind.dialect.name
            for job_id in sent:
                lifecycle.enqueue(request.dbsession, request.tm.get(),
                                  lifecycle.enqueued(
                                      job_id, 'myapp.tasks.add', (2, 'ü'),
                                      UNRECORDED['kwargs'], options,
                                      Origin.task('parent-1')))
        if sent == [alone]:
            assert on_the_cursor(lifecycle.insert_row(), dialect)
            precompiled._COMPILED.clear()
        else:
            assert not on_the_cursor(lifecycle.insert_row(), dialect)
    for job_id in [alone, *together]:
        job = load_job(any_app, job_id)
        assert (job.state, job.args, job.kwargs, job.origin, job.parent_id,
                job.sent_at) == ('PENDING', [2, 'ü'], UNRECORDED['kwargs'],
                                 'task:parent-1', 'parent-1', None)
        assert job.options['queue'] == 'reports'
        assert job.created_at.tzinfo is UTC


def test_an_engine_that_is_watched_runs_them_through_sqlalchemy(app):
    """A listener (tracing, a statement counter) or echo sees every
    statement: none goes around it."""
    engine = app.registry['dbsession_factory'].kw['bind']
    seen = []

    def executed(connection, cursor, statement, *args):
        seen.append(statement.split()[0])

    job_id = put_job(app, new_id())
    event.listen(engine, 'before_cursor_execute', executed)
    try:
        with autocommit(app.registry) as connection:
            assert precompiled.watched(connection.engine)
            lifecycle.start(connection, job_id, 'w1@host', 0)
            lifecycle.succeed(connection, job_id, 5)
    finally:
        event.remove(engine, 'before_cursor_execute', executed)
    assert seen == ['UPDATE', 'UPDATE']
    assert load_job(app, job_id).state == 'SUCCESS'


def test_a_database_error_is_sqlalchemys_and_names_the_statement(app):
    job_id = put_job(app, new_id())
    with autocommit(app.registry) as connection:
        connection.exec_driver_sql('DROP TRIGGER IF EXISTS refuse')
        connection.exec_driver_sql(
            "CREATE TRIGGER refuse BEFORE UPDATE ON jobs BEGIN "
            "SELECT RAISE(ABORT, 'no updates today'); END")
        try:
            with pytest.raises(sqlalchemy.exc.DatabaseError,
                               match='no updates today') as raised:
                lifecycle.start(connection, job_id, 'w1@host', 0)
        finally:
            connection.exec_driver_sql('DROP TRIGGER refuse')
    assert 'UPDATE jobs SET' in raised.value.statement
    assert not raised.value.connection_invalidated
    assert load_job(app, job_id).state == 'PENDING'


@pytest.mark.services
def test_a_dead_connection_is_invalidated_and_the_next_claim_works(pg_app):
    """The database ended the connection (a restart, an admin): the error
    says so, as SQLAlchemy's would, and the pool does not hand the dead
    connection out again."""
    registry = pg_app.registry
    job_id = put_job(pg_app, new_id())
    app_engine = registry['dbsession_factory'].kw['bind']
    with autocommit(registry) as connection:
        pid = connection.exec_driver_sql('SELECT pg_backend_pid()').scalar()
        with app_engine.connect() as admin:
            admin.execute(text('SELECT pg_terminate_backend(:pid)'),
                          {'pid': pid})
            admin.commit()
        with pytest.raises(sqlalchemy.exc.OperationalError) as raised:
            lifecycle.start(connection, job_id, 'w1@host', 0)
        assert raised.value.connection_invalidated
        assert connection.invalidated
    with autocommit(registry) as connection:
        assert lifecycle.start(connection, job_id, 'w1@host', 0) is None
    assert load_job(pg_app, job_id).state == 'STARTED'
