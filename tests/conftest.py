"""Fixtures of the whole suite.

Databases: the schema is made once per run, in this process (Alembic, as
``initialize_myapp_db`` runs it), in a SQLite template; each ini that needs
a database gets a copy (:func:`initialize_db`), so a test with a worker
still has its own database and broker folders.  Tests of the app without a
worker share one database per module (:func:`module_ini`), emptied before
each test (:func:`app`).  PostgreSQL: one database per run, migrated once.
"""
import signal
import threading

import pytest
import waitress
import webtest
from celery import signals
from pyramid.paster import get_app
from sqlalchemy import delete

from myapp.celery_integration import celery_app
from myapp import models
from myapp.models import BeatLease, Calculation, Job, PeriodicJob

from .jobs_support import clean_schedules_app, transaction_of
from .support import (DATABASES, FAST_LANE, POSTGRES_ADMIN_URL, POSTGRES_DB,
                      SCHEDULE_SECTIONS, copy_sqlite, database_of, migrate,
                      processes_refused, require, Worker, write_ini)


@pytest.fixture(scope='session', autouse=True)
def ctrl_c_reaches_children():
    """Started from a shell's background job (``bash .ci/run &``,
    ``nohup``), this process ignores SIGINT, and so would every process a
    test starts: ``celery events`` stopped with Ctrl-C would never stop.
    Python's own handler here gives them the default back (a handler,
    unlike "ignore", is not inherited across exec)."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield


@pytest.fixture(scope='session', autouse=True)
def fast_lane_guard():
    """In the fast lane, a test that starts a process fails (see support)."""
    if not FAST_LANE:
        yield
        return
    with processes_refused():
        yield


@pytest.fixture(scope='session')
def database_template(tmp_path_factory):
    """A SQLite database at the current schema, migrated once per run."""
    directory = tmp_path_factory.mktemp('template')
    path = directory / 'myapp.sqlite'
    migrate(f'sqlite:///{path}', directory)
    return str(path)


@pytest.fixture(scope='session')
def initialize_db(database_template):
    """``initialize_db(ini)``: the ini's SQLite database, at the current
    schema (a copy of the template), without a process."""
    def initialize(ini):
        url = database_of(ini)
        assert url.get_backend_name() == 'sqlite', \
            f'{url}: a PostgreSQL test takes the postgres_database fixture'
        copy_sqlite(database_template, url.database)
        return ini

    return initialize


@pytest.fixture(scope='module')
def module_ini(tmp_path_factory, initialize_db):
    """An ini on an in-memory broker (sends are real, no worker consumes
    them), with one database per test module."""
    return initialize_db(write_ini(tmp_path_factory.mktemp('app'),
                                   broker='memory'))


@pytest.fixture
def app(module_ini):
    """The app, its tables emptied, and Celery configured for it.

    Each test gets an app of its own (milliseconds) and its engine, closed
    afterwards so that a module's tests do not pile up open connections.
    """
    app = get_app(module_ini)
    with transaction_of(app) as request:
        request.dbsession.execute(delete(Job))
        request.dbsession.execute(delete(Calculation))
        request.dbsession.execute(delete(PeriodicJob))
        request.dbsession.execute(delete(BeatLease))
        request.dbsession.execute(delete(models.Worker))
    yield app
    app.registry['dbsession_factory'].kw['bind'].dispose()


@pytest.fixture
def api(app):
    return webtest.TestApp(app)


@pytest.fixture(scope='module')
def schedules_ini(tmp_path_factory, initialize_db):
    """An ini with the periodic jobs of :data:`.support.SCHEDULE_SECTIONS`
    in the Asia/Tokyo zone, on an in-memory broker, one per module."""
    return initialize_db(write_ini(
        tmp_path_factory.mktemp('schedules'), broker='memory',
        celery='timezone = Asia/Tokyo', extra=SCHEDULE_SECTIONS))


@pytest.fixture
def schedules_app(schedules_ini):
    """Its app, the jobs emptied and the periodic jobs the ini's (as beat
    leaves them when it starts)."""
    app = clean_schedules_app(schedules_ini)
    yield app
    app.registry['dbsession_factory'].kw['bind'].dispose()


@pytest.fixture(scope='session')
def postgres_database(tmp_path_factory):
    """A fresh PostgreSQL database for this test run, at the current
    schema."""
    require('postgresql')
    from sqlalchemy import create_engine, text

    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level='AUTOCOMMIT')
    with admin.connect() as connection:
        connection.execute(
            text(f'DROP DATABASE IF EXISTS {POSTGRES_DB} WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE {POSTGRES_DB}'))
    migrate(DATABASES['postgresql'], tmp_path_factory.mktemp('postgresql'))
    yield POSTGRES_DB
    with admin.connect() as connection:
        connection.execute(
            text(f'DROP DATABASE IF EXISTS {POSTGRES_DB} WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def published():
    """Ids of the task messages this process hands to a broker."""
    sent = []

    def record(headers=None, **kwargs):
        sent.append(headers['id'])

    signals.after_task_publish.connect(record, weak=False)
    yield sent
    signals.after_task_publish.disconnect(record)


@pytest.fixture
def broadcasts(monkeypatch):
    """What is broadcast to the workers as a revoke (not sent anywhere)."""
    sent = []
    monkeypatch.setattr(celery_app.control, 'revoke',
                        lambda job_id, **kw: sent.append((job_id, kw)))
    return sent


# -- the browser tests (tests/browser_support.py) ---------------------------

@pytest.fixture(scope='module')
def site(tmp_path_factory, initialize_db):
    """The app on http://127.0.0.1:PORT (waitress, in this process), with a
    real worker that runs beat; its base URL.  One per module."""
    from .browser_support import RUNNING, require_browser
    require_browser()
    ini = initialize_db(write_ini(tmp_path_factory.mktemp('browser')))
    with Worker(ini, '--beat', '--loglevel', 'INFO') as worker:
        RUNNING['worker'] = worker
        # Beat sends only once it holds the lease.
        worker.wait_for('beat: this process', timeout=30)
        server = waitress.create_server(get_app(ini), host='127.0.0.1',
                                        port=0)
        thread = threading.Thread(target=server.run, name='waitress',
                                  daemon=True)
        thread.start()
        try:
            yield f'http://127.0.0.1:{server.effective_port}'
        finally:
            server.close()
            server.task_dispatcher.shutdown()
            thread.join(10)


@pytest.fixture(scope='module')
def browser(site, tmp_path_factory):
    """Headless Chromium, one per module."""
    from .browser_support import start_browser
    driver = start_browser(tmp_path_factory.mktemp('chromium-profile'))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def no_console_errors(browser):
    """The test ends with no error in the browser's console (browser test
    modules use it for every test)."""
    from .browser_support import console_errors
    yield
    assert console_errors(browser) == []


# -- private servers for fault tests (tests/servers.py) ---------------------

@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of this test's own, on a free port: freeze it, kill
    it, restart it."""
    from .servers import RedisServer, require_binary
    require_binary('redis-server', 'a private redis-server')
    with RedisServer(tmp_path / 'redis') as server:
        yield server


@pytest.fixture
def private_redis_results(tmp_path):
    """A second private redis-server, for results."""
    from .servers import RedisServer, require_binary
    require_binary('redis-server', 'a private redis-server')
    with RedisServer(tmp_path / 'redis-results') as server:
        yield server


@pytest.fixture
def private_rabbitmq(tmp_path):
    """A RabbitMQ node of this test's own (boots in about 6 s)."""
    from .servers import RABBITMQ_SERVER, RabbitMQServer, require_binary
    require_binary(RABBITMQ_SERVER, 'a private RabbitMQ node')
    with RabbitMQServer(tmp_path / 'rabbitmq') as server:
        yield server


@pytest.fixture
def silent_port():
    """A localhost port that accepts connections and never answers."""
    from .servers import SilentListener
    listener = SilentListener()
    yield listener.port
    listener.close()
