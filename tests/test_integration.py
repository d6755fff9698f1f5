"""Real workers on the embedded setup, Redis, RabbitMQ and PostgreSQL."""
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest
from pyramid.paster import get_app
from sqlalchemy import func, select

from myapp import tasks
from myapp.celery_integration import celery_app
from myapp.models import Calculation

from .support import (BACKENDS, BIN, BROKERS, DATABASES, PROJECT, Worker,
                      require, write_ini)

pytestmark = pytest.mark.worker


@pytest.fixture(scope='module')
def embedded(tmp_path_factory, initialize_db):
    directory = tmp_path_factory.mktemp('embedded')
    ini = initialize_db(write_ini(directory, concurrency=3))
    with Worker(ini, '--loglevel', 'INFO') as worker:
        yield ini, worker


@pytest.fixture
def embedded_app(embedded):
    return get_app(embedded[0])


def sum_rows(app):
    engine = app.registry['dbsession_factory'].kw['bind']
    with engine.connect() as connection:
        return connection.scalar(select(func.count(Calculation.id)))


def check_round_trip(app):
    """The seed's add, and a task that writes the app's own tables."""
    result = tasks.add.delay(5, 10)
    assert result.task_name == 'myapp.tasks.add'
    assert result.get(timeout=20) == 15
    assert (result.ready(), result.successful(), result.result) == \
        (True, True, 15)
    before = sum_rows(app)
    stored = tasks.record_sum.delay([1, 2, 3]).get(timeout=20)
    assert stored['result'] == 6
    assert sum_rows(app) == before + 1


def test_embedded_round_trip(embedded_app):
    check_round_trip(embedded_app)
    assert tasks.xsum.delay([1, 2, 3, 4]).get(timeout=20) == 10
    assert tasks.mul.delay(6, 7).get(timeout=20) == 42


def test_embedded_broker_answers_inspect_ping(embedded_app):
    replies = celery_app.control.inspect(timeout=3).ping()
    assert replies and all(r == {'ok': 'pong'} for r in replies.values())


def test_worker_concurrency_from_the_ini_is_honoured(embedded_app):
    # pyramid_celery issue 95: the string "3" was not honoured.
    stats = celery_app.control.inspect(timeout=3).stats()
    assert [s['pool']['max-concurrency'] for s in stats.values()] == [3]


def test_embedded_revoke_of_a_queued_task(embedded_app):
    result = tasks.add.apply_async((1, 1), countdown=3)
    time.sleep(0.5)  # let the worker receive it and hold it until its ETA
    result.revoke()
    deadline = time.monotonic() + 15
    while result.state != 'REVOKED' and time.monotonic() < deadline:
        time.sleep(0.2)
    assert result.state == 'REVOKED'


def test_embedded_setup_holds_under_load(embedded, embedded_app):
    results, errors = [], []

    def send(count):
        try:
            for number in range(count):
                results.append((number, tasks.add.delay(number, 1)))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(125,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(results) == 500
    for number, result in results:
        assert result.get(timeout=120, interval=0.05) == number + 1
    assert 'database is locked' not in embedded[1].output()


def test_seed_002_pshell_session(embedded):
    session = '\n'.join([
        'from myapp import tasks',
        'result = tasks.add.delay(5, 10)',
        'result.task_name',
        'result.get(timeout=10)',
        'result.ready(), result.successful(), result.result',
        "sorted({'tasks', 'dbsession', 'tm', 'celery_app'} & set(dir()))",
    ]) + '\n'
    shell = subprocess.run(
        [os.path.join(BIN, 'pshell'), embedded[0], '-p', 'python'],
        input=session, capture_output=True, text=True, timeout=60)
    # What the session printed, without the interpreter's prompts.
    outputs = [part.strip() for part in shell.stdout.split('>>> ')
               if part.strip()]
    assert outputs[-4:] == ["'myapp.tasks.add'", '15', '(True, True, 15)',
                          "['celery_app', 'dbsession', 'tasks', 'tm']"], \
        shell.stdout + shell.stderr


@pytest.mark.skipif(
    sys.version_info >= (3, 12),
    reason='Python 3.12+: this form imports pyramid_celery 4.0 before myapp '
           'can restore configparser.SafeConfigParser (its issue 105), so it '
           'cannot start; celery -A myapp.celery_integration is the form there')
def test_plain_celery_command_with_pyramid_celery_app(tmp_path,
                                                      initialize_db):
    """``celery -A pyramid_celery.celery_app worker --ini`` keeps working,
    with the typed settings (pyramid_celery would re-read them as strings).
    """
    ini = initialize_db(write_ini(tmp_path, concurrency=3))
    argv = ['-A', 'pyramid_celery.celery_app', 'worker', '--ini', ini]
    with Worker(ini, command='celery', argv=argv):
        get_app(ini)
        assert tasks.add.delay(2, 3).get(timeout=20) == 5
        stats = celery_app.control.inspect(timeout=3).stats()
        assert [s['pool']['max-concurrency'] for s in stats.values()] == [3]


@pytest.mark.services
def test_redis_broker_and_results(tmp_path, initialize_db):
    require('redis')
    ini = initialize_db(write_ini(tmp_path, broker='redis', backend='redis'))
    with Worker(ini):
        app = get_app(ini)
        check_round_trip(app)
        assert celery_app.control.inspect(timeout=3).ping()


@pytest.mark.services
def test_rabbitmq_broker_postgresql_results_and_database(tmp_path,
                                                         postgres_database):
    require('rabbitmq', 'postgresql')
    ini = write_ini(tmp_path, broker='rabbitmq', backend='postgresql',
                    database='postgresql')
    with Worker(ini):
        app = get_app(ini)
        check_round_trip(app)
        assert celery_app.control.inspect(timeout=3).ping()


@pytest.mark.services
def test_redis_broker_postgresql_results(tmp_path, postgres_database):
    require('redis', 'postgresql')
    ini = write_ini(tmp_path, broker='redis', backend='postgresql',
                    database='postgresql')
    with Worker(ini):
        check_round_trip(get_app(ini))


@pytest.mark.services
def test_production_ini_with_secrets_from_the_environment(
        tmp_path, postgres_database, monkeypatch):
    require('rabbitmq', 'redis', 'postgresql')
    ini = tmp_path / 'production.ini'
    shutil.copy(os.path.join(PROJECT, 'production.ini'), ini)
    monkeypatch.setenv('DATABASE_URL', DATABASES['postgresql'])
    monkeypatch.setenv('CELERY_BROKER_URL', BROKERS['rabbitmq'])
    monkeypatch.setenv('CELERY_RESULT_BACKEND', BACKENDS['redis'])
    monkeypatch.setenv('MYAPP_SESSION_SECRET', 'production-test-secret')
    with Worker(str(ini)) as worker:
        app = get_app(str(ini))
        assert celery_app.conf.task_acks_late is True
        check_round_trip(app)
    assert 'guest:guest' not in worker.output()  # secrets are not printed
