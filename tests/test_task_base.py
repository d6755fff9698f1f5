"""The task base: a Pyramid request per run, its transaction, retries, sends.

Run in-process (``Task.apply``) against the app and a real kombu in-memory
broker; the worker-level behaviour is in test_integration.py.
"""
import datetime
import decimal

import pytest
import sqlalchemy.exc
import transaction
from kombu.exceptions import EncodeError
from pyramid.scripting import prepare
from sqlalchemy import func, select

from myapp import tasks
from myapp.celery_integration import task
from myapp.models import Calculation

attempts = []


@task(max_retries=3)
def flaky_write(request, failures, message):
    """Writes a row, then fails ``failures`` times with a database error."""
    attempts.append(1)
    request.dbsession.add(Calculation(operation='flaky', operands=[],
                                      result=len(attempts)))
    request.dbsession.flush()
    if len(attempts) <= failures:
        raise sqlalchemy.exc.OperationalError('INSERT ...', {},
                                              Exception(message))
    return len(attempts)


@task
def write_then_send_then_fail(request):
    request.dbsession.add(Calculation(operation='doomed', operands=[],
                                      result=0))
    tasks.add.delay(1, 1)
    raise ValueError('changed my mind')


@task
def send_from_task(request):
    return tasks.add.delay(2, 2).id


@pytest.fixture
def engine(app):
    return app.registry['dbsession_factory'].kw['bind']


@pytest.fixture(autouse=True)
def reset_attempts():
    attempts.clear()


def rows(engine, operation):
    with engine.connect() as connection:
        return connection.scalar(select(func.count(Calculation.id)).where(
            Calculation.operation == operation))


def test_a_task_gets_a_request_and_its_transaction_commits(app, engine):
    result = tasks.record_sum.apply(args=([1, 2, 3],))
    assert result.get() == {'id': 1, 'result': 6, 'count': 1}
    assert rows(engine, 'sum') == 1


def test_a_failing_task_aborts_its_transaction(app, engine, published):
    result = write_then_send_then_fail.apply()
    assert result.failed()
    assert rows(engine, 'doomed') == 0
    assert published == []  # the send inside the failed run never left


def test_transient_database_errors_retry_then_succeed(app, engine):
    result = flaky_write.apply(args=(2, 'database is locked'))
    assert result.get() == 3
    assert len(attempts) == 3
    assert rows(engine, 'flaky') == 1  # the failed attempts rolled back


def test_retries_stop_at_the_limit_with_the_original_error(app):
    result = flaky_write.apply(args=(10, 'deadlock detected'))
    assert len(attempts) == 4  # the first run and max_retries=3 retries
    with pytest.raises(sqlalchemy.exc.OperationalError, match='deadlock'):
        result.get()


def test_other_errors_are_not_retried(app):
    result = flaky_write.apply(args=(1, 'syntax error at or near'))
    assert len(attempts) == 1
    assert result.failed()


def test_no_connection_stays_checked_out_after_many_tasks(app, engine):
    for number in range(25):
        tasks.record_sum.apply(args=([number],)).get()
    write_then_send_then_fail.apply()
    assert engine.pool.checkedout() == 0


def request_with_transaction(app):
    env = prepare(registry=app.registry)
    env['request'].tm = transaction.TransactionManager(explicit=True)
    return env


def test_a_send_inside_a_transaction_waits_for_the_commit(app, published):
    env = request_with_transaction(app)
    try:
        with env['request'].tm:
            result = tasks.add.delay(5, 10)
            assert published == []
        assert published == [result.id]
        assert result.task_name == 'myapp.tasks.add'
    finally:
        env['closer']()


def test_a_send_inside_an_aborted_transaction_is_dropped(app, published):
    env = request_with_transaction(app)
    try:
        env['request'].tm.begin()
        tasks.add.delay(5, 10)
        env['request'].tm.abort()
        assert published == []
    finally:
        env['closer']()


def test_outside_a_transaction_a_send_goes_at_once(app, published):
    result = tasks.add.delay(5, 10)
    assert published == [result.id]
    env = request_with_transaction(app)  # a request, but no transaction
    try:
        result = tasks.mul.delay(2, 3)
        assert published[-1] == result.id
    finally:
        env['closer']()


def test_bad_calls_fail_in_the_caller_not_after_commit(app, published):
    env = request_with_transaction(app)
    try:
        with env['request'].tm:
            with pytest.raises(TypeError):
                tasks.add.delay(1)
            with pytest.raises(EncodeError):
                tasks.xsum.delay({1, 2})  # a set is not JSON
        assert published == []
    finally:
        env['closer']()


@pytest.mark.parametrize('value', [
    datetime.datetime(2026, 11, 22, 17, 44), decimal.Decimal('2.5'),
    b'bytes', float('nan'), float('inf')])
def test_arguments_that_are_not_plain_json_are_refused_in_the_caller(
        app, published, value):
    # They used to reach the API as {"__type__": "decimal", ...}.
    with pytest.raises(EncodeError, match='must be plain JSON'):
        tasks.add.delay(value, 1)
    assert published == []


def test_a_send_from_a_task_leaves_when_the_task_commits(app, published):
    result = send_from_task.apply()
    assert published == [result.get()]


def test_a_task_must_take_the_request_first():
    with pytest.raises(TypeError, match='first parameter, "request"'):
        @task
        def no_request(x, y):
            return x + y
