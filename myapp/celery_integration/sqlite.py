"""Let SQLite take concurrent writers: web app, worker processes and beat.

SQLite's defaults answer a concurrent writer with "database is locked" at
once; in WAL mode readers do not block the writer, and a busy timeout makes
a writer wait for the lock instead of failing.

:func:`tune_sqlite_engine` applies that to one engine.  The integration
uses it for an SQLite result backend (Celery's ``database_engine_callback``
setting, see :mod:`.settings`); an application applies it to its own engine
if it wants the same (myapp does, in ``myapp.models.get_engine``).  It
listens on that engine only: other engines in the process keep their own
settings.
"""
import sqlite3

from sqlalchemy import event

BUSY_TIMEOUT_MS = 30000


def tune_sqlite_engine(engine):
    """Apply the pragmas to each new connection of ``engine`` (if SQLite)."""
    if engine.dialect.name == 'sqlite' and \
            not event.contains(engine, 'connect', _on_connect):
        event.listen(engine, 'connect', _on_connect)
    return engine


def _on_connect(dbapi_connection, connection_record):
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f'PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}')
        cursor.execute('PRAGMA journal_mode = WAL')
        cursor.execute('PRAGMA synchronous = NORMAL')
    finally:
        cursor.close()
