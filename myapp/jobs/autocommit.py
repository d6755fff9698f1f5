"""One statement, one transaction: the recorder's lean path to the database.

Starting a run, recording its progress, and the success of a run that
wrote nothing are each one statement (:mod:`.lifecycle`).  Through a
request, a transaction manager and a session, each cost ``BEGIN``, the
statement and ``COMMIT`` (three round trips to the database) and a
millisecond of Python besides.  On a pooled connection in autocommit mode
the statement is its own transaction: one round trip, no request, no
transaction manager, no ORM.

Only where no transition needs a savepoint, on the databases with ``INSERT
... ON CONFLICT`` (:data:`.lifecycle.DIALECT_INSERTS`); on others
:func:`autocommit` is a plain session in a transaction.

On PostgreSQL these statements commit without waiting for the write-ahead
log to reach the disk (``synchronous_commit = off``, on a pool of their
own so that no other transaction does): that wait was most of a claim's
time.  A server crash may then forget the last fraction of a second of
them, and nothing is lost by it: a forgotten claim leaves the job waiting
(its message is in the broker, or the sweeper sends it again), a forgotten
progress report is overwritten by the next, and a forgotten success of a
run that wrote nothing leaves the run to its lease (:mod:`.leases`, which
finds the result in the result backend).  Every later synchronous commit
(a task's own writes, a view's) makes the earlier ones durable too: the
log is written in order.
"""
import contextlib
import os

from sqlalchemy import engine_from_config

from ..celery_integration.timeouts import database_connect_args
from .lifecycle import DIALECT_INSERTS

ENGINE = 'myapp.jobs.autocommit_engine'
#: libpq's ``options`` for the PostgreSQL pool of this module.
POSTGRESQL_OPTIONS = '-c synchronous_commit=off'


def autocommit_engine(registry):
    """An engine whose connections are in autocommit mode (this process's:
    a forked child makes its own); None where :mod:`this module
    <.autocommit>` does not apply."""
    cached = registry.get(ENGINE)
    if cached is None or cached[0] != os.getpid():
        engine = lean_engine(registry['dbsession_factory'].kw['bind'],
                             registry.settings or {})
        cached = registry[ENGINE] = (os.getpid(), engine)
    return cached[1]


def lean_engine(engine, settings):
    """The app's ``engine`` in autocommit mode: on PostgreSQL a pool of
    its own (see above), configured as the app's by the ini's
    ``sqlalchemy.*`` settings (``pool_pre_ping``...); else the app's
    pool."""
    dialect = engine.dialect.name
    if dialect not in DIALECT_INSERTS:
        return None
    if dialect != 'postgresql':
        return engine.execution_options(isolation_level='AUTOCOMMIT')
    url = engine.url  # DATABASE_URL or sqlalchemy.url, as the app's
    connect_args = database_connect_args(url)
    options = url.query.get('options')
    connect_args['options'] = f'{options} {POSTGRESQL_OPTIONS}' \
        if options else POSTGRESQL_OPTIONS
    return engine_from_config(
        settings, 'sqlalchemy.', url=url.difference_update_query(['options']),
        isolation_level='AUTOCOMMIT', connect_args=connect_args)


@contextlib.contextmanager
def autocommit(registry):
    """A connection whose every statement commits as it runs (no session
    either: the ORM's bookkeeping would cost more than the statement), or
    a session in a transaction where that does not apply."""
    engine = autocommit_engine(registry)
    if engine is None:
        with registry['dbsession_factory']() as dbsession, dbsession.begin():
            yield dbsession
        return
    with engine.connect() as connection:
        yield connection
