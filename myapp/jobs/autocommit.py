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
"""
import contextlib

from .lifecycle import DIALECT_INSERTS

ENGINE = 'myapp.jobs.autocommit_engine'


def autocommit_engine(registry):
    """The app's engine (and pool), its connections in autocommit mode;
    None where :mod:`this module <.autocommit>` does not apply."""
    engine = registry.get(ENGINE, False)
    if engine is False:
        engine = registry['dbsession_factory'].kw['bind']
        engine = registry[ENGINE] = \
            engine.execution_options(isolation_level='AUTOCOMMIT') \
            if engine.dialect.name in DIALECT_INSERTS else None
    return engine


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
