"""Bounded waits: a broker, result backend or database that hangs must not
hang the web app, the worker or a command with it.

Celery, kombu, redis-py and psycopg wait forever by default on a server that
accepts connections but never answers (a frozen process, a half-open
connection after a failover, a firewall that drops packets): kombu's Redis
socket has no timeout, so a send after commit blocked a web request for
minutes; Celery's Redis result backend retries 20 times; psycopg has no
connect timeout.  This module gives each of them a bound, as *defaults*: a
value the ini sets explicitly always wins.

The one setting to tune is the bound of a send, in ``[app:main]``::

    celery.send_timeout = 5

(seconds, 6 by default).  A send that has not gone through within about that
time gives up: the job stays in the outbox (``jobs.sent_at`` NULL) and the
sweeper (:mod:`myapp.jobs.outbox`) sends it later.  From it:

* a failed publish is tried once more, after a reconnection
  (``task_publish_retry_policy``), and each of these three steps may wait a
  third of the bound (Redis ``socket_timeout`` and
  ``socket_connect_timeout``, AMQP ``connect_timeout`` and
  ``write_timeout``, through ``broker_connection_timeout`` and
  ``broker_transport_options``);
* a Redis result backend gets the same socket timeouts
  (``redis_socket_timeout``, ``redis_socket_connect_timeout``) and retries a
  store for no longer than that (``result_backend_transport_options``
  ``retry_policy``; Celery's default retries 20 times, about 20 s);
* PostgreSQL, as the app database (``sqlalchemy.url``) and as a ``db+``
  result backend (``database_engine_options``), gets psycopg's
  ``connect_timeout`` (:data:`DATABASE_CONNECT_TIMEOUT`) and TCP keepalives.
  Write ``?connect_timeout=N`` in the URL to change it.  No statement or
  idle-in-transaction timeout is set: a task's transaction may rightly stay
  open as long as the task runs, and a nightly purge may take long; set
  them in PostgreSQL for the role if you want them.

A Redis broker gives a message that a worker read and never acknowledged
(the worker died) to another worker after ``visibility_timeout``: kombu's
default is an hour, checked every 100 s.  Here it is
:data:`REDIS_VISIBILITY_TIMEOUT`, checked every 5 s, so a dead worker's
prefetched jobs run elsewhere within a minute.  A copy delivered while the
first worker still runs the job (a task longer than that, with
``task_acks_late``) is not run twice: starting a job is a compare-and-set
on its row, which a live run holds (``myapp.jobs.leases``); and a job due
later than 20 s waits in the outbox, not in the worker
(``myapp.jobs.outbox``).

AMQP also gets a 30 s heartbeat (``broker_heartbeat``, Celery's default is
120): a worker notices a RabbitMQ that stopped answering within a minute
and reconnects.
"""
import math

from sqlalchemy.engine import make_url

from .errors import ConfigError, StartupError

#: The app setting (``[app:main]``) that bounds a send, in seconds.
SEND_TIMEOUT_SETTING = 'celery.send_timeout'
DEFAULT_SEND_TIMEOUT = 6.0

#: Seconds psycopg waits for a PostgreSQL connection to be established.
DATABASE_CONNECT_TIMEOUT = 10

#: TCP keepalives for PostgreSQL connections (libpq's names): a connection
#: whose server vanished is noticed in about a minute instead of hours.
POSTGRESQL_KEEPALIVES = {'keepalives': 1, 'keepalives_idle': 30,
                         'keepalives_interval': 10, 'keepalives_count': 3}

AMQP_HEARTBEAT = 30

#: Seconds before Redis hands a dead worker's unacknowledged message to
#: another (kombu: 3600).
REDIS_VISIBILITY_TIMEOUT = 45


def apply_timeout_defaults(settings, app_settings, ini_path):
    """Add the bounded-wait defaults to ``settings`` (Celery's, typed, as
    read from the ini), leaving every value the ini set alone."""
    bound = send_timeout(app_settings, ini_path)
    # A publish waits at most three times: the first attempt, the
    # reconnection after it failed, and the second attempt.
    attempt = bound / 3
    settings.setdefault('broker_connection_timeout', attempt)
    settings.setdefault('task_publish_retry_policy', {
        'max_retries': 1, 'interval_start': 0, 'interval_step': 0.2,
        'interval_max': 0.2})
    broker = (settings.get('broker_url') or '').lower()
    if broker.startswith(('redis:', 'rediss:', 'sentinel:')):
        _set_keys(settings, 'broker_transport_options', {
            'socket_timeout': attempt, 'socket_connect_timeout': attempt,
            'socket_keepalive': True,
            'visibility_timeout': REDIS_VISIBILITY_TIMEOUT,
            'unacked_restore_interval': 5, 'unacked_restore_throttle': 1})
    elif broker.startswith(('amqp:', 'amqps:', 'pyamqp:')):
        settings.setdefault('broker_heartbeat', AMQP_HEARTBEAT)
        _set_keys(settings, 'broker_transport_options',
                  {'write_timeout': attempt})
    backend_url = settings.get('result_backend') or ''
    backend = backend_url.lower()
    if backend.startswith(('redis:', 'rediss:', 'sentinel:')):
        settings.setdefault('redis_socket_timeout', attempt)
        settings.setdefault('redis_socket_connect_timeout', attempt)
        _set_keys(settings, 'result_backend_transport_options', {
            'retry_policy': {'max_retries': 5, 'interval_start': 0,
                             'interval_step': 0.5, 'interval_max': 1,
                             'timeout': attempt}})
    elif backend.startswith('db+postgresql'):
        connect_args = database_connect_args(make_url(backend_url[len('db+'):]))
        options = dict(settings.get('database_engine_options') or {})
        options['connect_args'] = {**connect_args,
                                   **(options.get('connect_args') or {})}
        settings['database_engine_options'] = options


def send_timeout(app_settings, ini_path):
    value = (app_settings or {}).get(SEND_TIMEOUT_SETTING)
    if value is None or str(value).strip() == '':
        return DEFAULT_SEND_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise StartupError(str(ConfigError(
            ini_path, 'app:main', SEND_TIMEOUT_SETTING,
            f'"{value}" is not a number of seconds above 0',
            f'write a number such as {DEFAULT_SEND_TIMEOUT:g}')))
    return seconds


def _set_keys(settings, name, defaults):
    """Default keys of a dictionary setting (``[celery:NAME]``)."""
    settings[name] = {**defaults, **(settings.get(name) or {})}


def postgresql_connect_args():
    return {'connect_timeout': DATABASE_CONNECT_TIMEOUT,
            **POSTGRESQL_KEEPALIVES}


def database_connect_args(url):
    """``connect_args`` for the app database's engine (``sqlalchemy.url``):
    the PostgreSQL defaults above, less what the URL's query sets."""
    if url.get_backend_name() != 'postgresql':
        return {}
    return {key: value for key, value in postgresql_connect_args().items()
            if key not in url.query}
