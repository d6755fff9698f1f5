import pytest
from celery import signals
from pyramid.paster import get_app

from myapp.celery_integration import celery_app

from .support import (POSTGRES_ADMIN_URL, POSTGRES_DB, initialize_db, require,
                      write_ini)


@pytest.fixture
def ini(tmp_path):
    """An initialised embedded-setup ini (filesystem broker, SQLite)."""
    path = write_ini(tmp_path)
    initialize_db(path)
    return path


@pytest.fixture
def memory_ini(tmp_path):
    """In-memory broker: sends are real, no worker consumes them."""
    path = write_ini(tmp_path, broker='memory')
    initialize_db(path)
    return path


@pytest.fixture
def app(memory_ini):
    return get_app(memory_ini)


@pytest.fixture(scope='session')
def postgres_database():
    """A fresh PostgreSQL database for this test run."""
    require('postgresql')
    from sqlalchemy import create_engine, text

    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level='AUTOCOMMIT')
    with admin.connect() as connection:
        connection.execute(
            text(f'DROP DATABASE IF EXISTS {POSTGRES_DB} WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE {POSTGRES_DB}'))
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
