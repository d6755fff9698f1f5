"""The journal: a send outside a transaction costs no transaction; its row
and every ``sent_at`` are written in batches, and lose nothing that
matters when they come late."""
import pytest
from sqlalchemy import event

from myapp import tasks
from myapp.jobs import journal, lifecycle
from myapp.models.types import utcnow

from .jobs_support import (FAIL_FAST, UNREACHABLE_BROKER, load_job, put_job,
                           transaction_of)
from .support import write_ini


@pytest.fixture
def commits(app):
    """The commits on the app's database, counted."""
    engine = app.registry['dbsession_factory'].kw['bind']
    counted = []

    def count(connection):
        counted.append(1)

    event.listen(engine, 'commit', count)
    yield counted
    event.remove(engine, 'commit', count)


def test_a_send_outside_a_transaction_commits_nothing_itself(
        app, commits, published):
    current = journal.journal(app.registry)
    with current.writing:  # hold the writer back
        job_ids = [tasks.add.delay(i, i).id for i in range(20)]
        assert published == job_ids and commits == []
    current.flush()
    assert len(commits) <= 1  # one batch (or none if the thread won)
    job = load_job(app, job_ids[-1])
    assert (job.state, job.origin, job.args) == ('PENDING', 'shell', [19, 19])
    assert job.sent_at is not None


def test_a_row_the_worker_wrote_first_keeps_its_state(app, published):
    current = journal.journal(app.registry)
    with current.writing:
        job_id = tasks.add.apply_async((1, 2), origin='beat:nightly').id
        factory = app.registry['dbsession_factory']
        with factory() as dbsession, dbsession.begin():  # a worker starts it
            lifecycle.start(dbsession, job_id, 'w1@host', 0,
                            {'task_name': 'myapp.tasks.add',
                             'args': [1, 2], 'kwargs': {}})
    job = load_job(app, job_id)  # the journal written, after the worker
    assert (job.state, job.worker, job.origin) == \
        ('STARTED', 'w1@host', 'beat:nightly')


def test_sent_marks_of_rows_written_in_transactions_come_in_batches(
        app, published):
    with transaction_of(app):
        job_id = tasks.add.delay(1, 2).id
    load_job(app, job_id)  # flushes
    assert load_job(app, job_id).sent_at is not None


def test_a_failed_send_is_in_the_outbox_before_the_sender_hears_of_it(
        tmp_path, initialize_db):
    from pyramid.paster import get_app

    ini = initialize_db(write_ini(tmp_path, broker=UNREACHABLE_BROKER,
                                  celery=FAIL_FAST))
    app = get_app(ini)
    engine = app.registry['dbsession_factory'].kw['bind']
    with pytest.raises(Exception):
        tasks.add.apply_async((1, 2), task_id='refused')
    with engine.connect() as connection:  # no flush by the test helpers
        row = connection.exec_driver_sql(
            "SELECT state, sent_at FROM jobs WHERE id = 'refused'").one()
    assert tuple(row) == ('PENDING', None)


def test_what_cannot_be_written_is_kept_and_bounded(app, monkeypatch):
    current = journal.Journal(app.registry['dbsession_factory'])
    monkeypatch.setattr(journal, 'MAX_PENDING', 3)
    current.keep({str(n): {'id': str(n)} for n in range(5)},
                 {'m': {'job_id': 'm', 'at': utcnow()}},
                 {str(n): {'job_id': str(n)} for n in range(4)})
    assert list(current.rows) == ['2', '3', '4'] and list(current.marks) == \
        ['m'] and list(current.successes) == ['1', '2', '3']


@pytest.mark.services
def test_two_journals_writing_the_same_rows_do_not_deadlock(
        tmp_path, postgres_database):
    """A sender's journal marks rows sent while a worker's writes their
    successes: each takes its rows' locks in the order of their ids, so
    neither waits on the other in a cycle (PostgreSQL would kill one)."""
    import threading

    from pyramid.paster import get_app
    from sqlalchemy import delete as sqlalchemy_delete
    from sqlalchemy import update

    from myapp.models import Job

    pg_app = get_app(write_ini(tmp_path, broker='memory',
                               database='postgresql'))
    factory = pg_app.registry['dbsession_factory']
    ids = [f'deadlock-{n:03}' for n in range(200)]
    try:
        for job_id in ids:
            put_job(pg_app, job_id, sent_at=None)
        for attempt in range(10):
            with transaction_of(pg_app) as request:
                request.dbsession.execute(
                    update(Job).where(Job.id.in_(ids)).values(sent_at=None))
            sender = journal.Journal(factory, interval=3600)
            worker = journal.Journal(factory, interval=3600)
            for job_id in ids:  # the orders in which each learnt them
                sender.sent(job_id, utcnow())
            for job_id in reversed(ids):
                worker.succeeded(job_id, 5, utcnow())
            failures = []

            def flush(current):
                try:
                    for _ in range(3):
                        current.flush()
                except Exception as exc:
                    failures.append(exc)

            threads = [threading.Thread(target=flush, args=(current,))
                       for current in (sender, worker)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert failures == [], f'attempt {attempt}: {failures[0]}'
        job = load_job(pg_app, ids[0])
        assert (job.state, job.result) == ('SUCCESS', 5) and job.sent_at
    finally:
        with transaction_of(pg_app) as request:
            request.dbsession.execute(
                sqlalchemy_delete(Job).where(Job.id.in_(ids)))
        factory.kw['bind'].dispose()


@pytest.mark.services
def test_the_lean_pool_commits_asynchronously_and_keeps_the_ini_settings(
        tmp_path, postgres_database):
    """On PostgreSQL the claim's pool does not wait for the disk, and is
    configured as the app's (production.ini's pool_pre_ping: a claim after
    a database restart must not meet a dead connection)."""
    from pyramid.paster import get_app

    from myapp.jobs.autocommit import autocommit, autocommit_engine

    pg_app = get_app(write_ini(tmp_path, broker='memory',
                               database='postgresql',
                               app='sqlalchemy.pool_pre_ping = true'))
    try:
        engine = autocommit_engine(pg_app.registry)
        assert engine.pool._pre_ping
        with autocommit(pg_app.registry) as connection:
            assert connection.exec_driver_sql(
                'SHOW synchronous_commit').scalar() == 'off'
        app_engine = pg_app.registry['dbsession_factory'].kw['bind']
        with app_engine.connect() as connection:  # the others wait for it
            assert connection.exec_driver_sql(
                'SHOW synchronous_commit').scalar() == 'on'
        engine.dispose()
    finally:
        pg_app.registry['dbsession_factory'].kw['bind'].dispose()


@pytest.mark.services
def test_on_postgresql_each_batch_is_one_json_statement_keeping_every_value(
        tmp_path, postgres_database):
    """The rows, marks and successes of a batch travel as one JSON document
    (json_to_recordset): every value comes back as it went in, times to
    the microsecond and in UTC, NULL where there was none."""
    import datetime

    from pyramid.paster import get_app

    from sqlalchemy import delete as sqlalchemy_delete

    from myapp.celery_integration import Origin
    from myapp.models.types import UTC

    pg_app = get_app(write_ini(tmp_path, broker='memory',
                               database='postgresql'))
    factory = pg_app.registry['dbsession_factory']
    engine = factory.kw['bind']
    statements = []

    def executed(connection, cursor, statement, parameters, *args):
        statements.append((statement.split()[0],
                           'json_to_recordset' in statement))

    offset = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    due = datetime.datetime(2031, 2, 3, 4, 5, 6, 789012, tzinfo=offset)
    rows = [lifecycle.enqueued(f'batch-{n}', 'myapp.tasks.add',
                               [n, 'ü "quoted"', {'none': None}],
                               {'k': [1.5, True]}, {'eta': due},
                               Origin.task('parent-job'))
            for n in range(3)]
    sent_at = datetime.datetime(2030, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
    current = journal.Journal(factory, interval=3600)
    event.listen(engine, 'before_cursor_execute', executed)
    try:
        for row in rows:
            current.record(row)
        current.sent('batch-0', sent_at)  # before its row is written
        current.flush()
        assert statements == [('INSERT', True)]
        for row in rows[1:]:
            current.sent(row['id'], sent_at)  # marks on written rows
        for n, result in enumerate([None, 'text', {'deep': [1, None]}]):
            current.succeeded(f'batch-{n}', result, sent_at)
        statements.clear()
        current.flush()
        # Marks, then successes: each locks its rows in order, then writes.
        assert statements == [('SELECT', True), ('UPDATE', True)] * 2
    finally:
        event.remove(engine, 'before_cursor_execute', executed)
    try:
        jobs = [load_job(pg_app, f'batch-{n}') for n in range(3)]
        for n, job in enumerate(jobs):
            assert (job.args, job.kwargs, job.origin, job.parent_id) == \
                ([n, 'ü "quoted"', {'none': None}], {'k': [1.5, True]},
                 'task:parent-job', 'parent-job')
            assert job.options == rows[n]['options']
            assert job.created_at == rows[n]['created_at']
            assert (job.sent_at, job.finished_at, job.state) == \
                (sent_at, sent_at, 'SUCCESS')
            assert (job.started_at, job.worker, job.error_type) == \
                (None, None, None)
        assert [job.result for job in jobs] == \
            [None, 'text', {'deep': [1, None]}]
    finally:
        with transaction_of(pg_app) as request:
            request.dbsession.execute(
                sqlalchemy_delete(lifecycle.Job))
        engine.dispose()
