"""Which errors are worth running a task again for.

:func:`is_transient_error` is the default: lost connections, serialization
failures and deadlocks on PostgreSQL, MySQL/MariaDB and SQLite.  An
application with other transient failures (a rate-limited API, its own
database's codes) sets its own test where it is configured::

    config.set_transient_error_test(my_app.retry.is_transient)

The test receives the exception a task raised and returns True to retry.
"""
import sqlalchemy.exc
import transaction

#: Where the app's test is kept in the registry.
REGISTRY_KEY = 'celery_integration.transient_error_test'

#: SQLSTATEs worth a retry: serialization failure, deadlock, lost connection.
TRANSIENT_SQLSTATES = ('40001', '40P01', '08000', '08003', '08006', '57P01')
#: MySQL/MariaDB: lock wait timeout, deadlock, server gone, connection lost.
TRANSIENT_MYSQL_CODES = (1205, 1213, 2006, 2013)
TRANSIENT_MESSAGES = ('database is locked', 'deadlock detected')


def is_transient_error(exc):
    """True when running the same task again may well succeed."""
    if isinstance(exc, (transaction.interfaces.TransientError,
                        sqlalchemy.exc.DisconnectionError)):
        return True
    if not isinstance(exc, sqlalchemy.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    original = exc.orig
    code = getattr(original, 'sqlstate', None) or \
        getattr(original, 'pgcode', None)
    if code in TRANSIENT_SQLSTATES:
        return True
    args = getattr(original, 'args', ())
    if args and args[0] in TRANSIENT_MYSQL_CODES:
        return True
    return any(text in str(original).lower() for text in TRANSIENT_MESSAGES)


def transient_error_test(registry):
    """The app's test, or the default."""
    if registry is None:
        return is_transient_error
    return registry.get(REGISTRY_KEY, is_transient_error)


def set_transient_error_test(config, test):
    """Directive: ``test(exc)`` decides which task errors are retried."""
    test = config.maybe_dotted(test)

    def register():
        config.registry[REGISTRY_KEY] = test

    config.action(REGISTRY_KEY, register)
