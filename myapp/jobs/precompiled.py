"""Statements compiled once, run straight on the driver's cursor.

A run's claim and the success of a run that wrote nothing are each one
statement on an autocommit connection (:mod:`.autocommit`).  Through
``Connection.execute``, SQLAlchemy's work around the statement (an
execution context, parameter processing, a result object) took as long as
the database took to run it: 0.40-0.67 ms against 0.31-0.42 ms on the
driver's cursor (PostgreSQL, psycopg, measured in one process).

:func:`execute` runs a statement marked with :func:`precompiled` that way:
compiled once per dialect, its parameters converted by the same type
processors SQLAlchemy would use, its errors raised as SQLAlchemy's (so
``OperationalError`` and ``connection_invalidated`` mean what they do
elsewhere), and a connection that the error shows dead invalidated, as
SQLAlchemy does.  Anything else, a session included, goes through
SQLAlchemy as usual; so does every statement of an engine that logs them
(``sqlalchemy.echo``) or that something watches (a ``before_cursor_execute``
listener: tracing, statement counters), so that they miss none.
"""
import weakref

import sqlalchemy.exc
from sqlalchemy.engine import Connection

#: The execution option that marks a statement built once for this path.
OPTION = 'myapp_precompiled'


def precompiled(statement):
    """Mark ``statement`` (built once, every value a named ``bindparam``)
    to run on the driver's cursor where :func:`execute` can."""
    return statement.execution_options(**{OPTION: True})


def execute(connection, statement, params):
    """``connection.execute(statement, params)``, on the driver's cursor
    for a :func:`precompiled` statement on a plain connection; returns
    an object with ``rowcount`` and ``first()``."""
    if not isinstance(connection, Connection) or \
            not statement.get_execution_options().get(OPTION) or \
            watched(connection.engine):
        return connection.execute(statement, params)
    return compiled_for(statement, connection.dialect).run(connection,
                                                           params)


def watched(engine):
    """Does anything log or listen to this engine's statements?"""
    dispatch = engine.dispatch
    return bool(engine.echo or dispatch.before_cursor_execute
                or dispatch.after_cursor_execute)


_COMPILED = weakref.WeakKeyDictionary()  # statement: {dialect name: ...}


def compiled_for(statement, dialect):
    by_dialect = _COMPILED.setdefault(statement, {})
    compiled = by_dialect.get(dialect.name)
    if compiled is None:
        compiled = by_dialect[dialect.name] = CompiledStatement(statement,
                                                               dialect)
    return compiled


class CompiledStatement:
    """One statement for one dialect: its SQL and how to bind it."""

    def __init__(self, statement, dialect):
        compiled = statement.compile(dialect=dialect)
        if compiled.escaped_bind_names:
            raise ValueError(f'{statement}: bind names must be plain '
                             'identifiers to be precompiled')
        self.sql = compiled.string
        self.defaults = compiled.construct_params(_check=False)
        # By the names in the SQL (a value given in the statement, such
        # as None, has an anonymous one).
        self.processors = {
            name: processor for name, processor in (
                (name, bind.type.dialect_impl(dialect)
                 .bind_processor(dialect))
                for bind, name in compiled.bind_names.items())
            if processor is not None}
        self.order = compiled.positiontup if compiled.positional else None

    def parameters(self, params):
        values = {**self.defaults, **params}
        for name, processor in self.processors.items():
            values[name] = processor(values[name])
        if self.order is None:
            return values
        return tuple(values[name] for name in self.order)

    def run(self, connection, params):
        parameters = self.parameters(params)
        dbapi_connection = connection.connection.dbapi_connection
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(self.sql, parameters)
            rows = cursor.fetchall() if cursor.description else []
            return Outcome(cursor.rowcount, rows)
        except connection.dialect.loaded_dbapi.Error as exc:
            raise self.wrapped(connection, exc, parameters, dbapi_connection,
                               cursor) from exc
        finally:
            cursor.close()

    def wrapped(self, connection, exc, parameters, dbapi_connection,
                cursor):
        """``exc`` as SQLAlchemy would raise it; the connection invalidated
        if ``exc`` says it is dead."""
        dialect = connection.dialect
        dead = dialect.is_disconnect(exc, dbapi_connection, cursor)
        if dead:
            connection.invalidate(exc)
        return sqlalchemy.exc.DBAPIError.instance(
            self.sql, parameters, exc, dialect.loaded_dbapi.Error,
            hide_parameters=connection.engine.hide_parameters,
            connection_invalidated=dead, dialect=dialect)


class Outcome:
    """What :func:`execute` reports: the row count and the rows."""

    def __init__(self, rowcount, rows):
        self.rowcount = rowcount
        self.rows = rows

    def first(self):
        return self.rows[0] if self.rows else None
