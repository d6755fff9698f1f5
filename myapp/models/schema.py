"""Is the database at the schema this code expects (Alembic's head)?"""
import os

import sqlalchemy.exc
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from ..celery_integration.errors import StartupError

ALEMBIC_FOLDER = os.path.join(os.path.dirname(os.path.dirname(__file__)),
                              'alembic')


def alembic_head():
    config = Config()
    config.set_main_option('script_location', ALEMBIC_FOLDER)
    return ScriptDirectory.from_config(config).get_current_head()


def check_schema_is_current(engine, config_file=None):
    """Stop start-up with one line when the schema is missing or behind."""
    where = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as connection:
            current = current_revision(connection)
    except sqlalchemy.exc.OperationalError as exc:
        if engine.url.get_backend_name() != 'sqlite':
            raise StartupError(f'cannot connect to the database {where}: '
                               f'{exc.orig}') from None
        current = None  # SQLite cannot open a file in a missing folder
    # The worker forks after this; its children must not share the pooled
    # connection (SQLAlchemy's advice for multiprocessing).
    engine.dispose()
    if current == alembic_head():
        return
    state = 'is not initialised' if current is None else \
        f'is at revision {current}, not {alembic_head()}'
    raise StartupError(
        f'the database {where} '
        f'{state}: run initialize_myapp_db with the same ini file '
        f'(e.g. initialize_myapp_db {config_file or "development.ini"})')


def current_revision(connection):
    """The revision Alembic recorded, read directly (Alembic's own reader
    logs at INFO, which every command would print before its one line)."""
    if not inspect(connection).has_table('alembic_version'):
        return None
    return connection.scalar(text('SELECT version_num FROM alembic_version'))
