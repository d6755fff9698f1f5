"""Let SQLite take a worker's concurrent writes.

With the embedded defaults, the web app, every worker process and beat write
to SQLite files at once (results, application tables).  SQLite's defaults
answer a concurrent writer with "database is locked" immediately; in WAL
mode readers do not block the writer, and a busy timeout makes a writer wait
for the lock instead of failing.
"""
import sqlite3

from sqlalchemy import event
from sqlalchemy.engine import Engine

BUSY_TIMEOUT_MS = 30000
_installed = False


def tune_sqlite_connections():
    """Apply the pragmas to every SQLite connection this process opens."""
    global _installed
    if not _installed:
        event.listen(Engine, 'connect', _on_connect)
        _installed = True


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
