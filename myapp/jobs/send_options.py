"""The send options a job keeps, so that the sweeper can send it again.

``apply_async`` options may hold objects (a ``producer``, an ``Exchange``)
and relative times; a job row keeps only plain JSON, with absolute times.
"""
import datetime

#: Options kept as they are when they are plain values.
PLAIN_OPTIONS = ('queue', 'routing_key', 'exchange', 'priority',
                 'time_limit', 'soft_time_limit')
#: Options that are times; ``countdown`` and a number of seconds for
#: ``expires`` are made absolute.
TIME_OPTIONS = ('eta', 'expires')


def options_to_store(options, now):
    """Plain JSON; relative times made absolute from ``now``.

    A job the sweeper sends a minute late must still run when it was asked
    to run, not a minute later.
    """
    stored = {name: options[name] for name in PLAIN_OPTIONS
              if isinstance(options.get(name), (str, int, float))}
    eta, expires = options.get('eta'), options.get('expires')
    if eta is None and options.get('countdown') is not None:
        eta = now + datetime.timedelta(seconds=options['countdown'])
    if isinstance(expires, (int, float)):
        expires = now + datetime.timedelta(seconds=expires)
    for name, value in (('eta', eta), ('expires', expires)):
        if isinstance(value, datetime.datetime):
            stored[name] = value.isoformat()
        elif isinstance(value, str):
            stored[name] = value
    return stored


def options_to_send(stored):
    """What to pass to ``apply_async``/``publish`` for the stored options."""
    options = dict(stored)
    for name in TIME_OPTIONS:
        if name in options:
            options[name] = datetime.datetime.fromisoformat(options[name])
    return options


def due_time(stored):
    """When the job is to run (its stored ``eta``, aware), or None."""
    eta = stored.get('eta')
    if eta is None:
        return None
    due = datetime.datetime.fromisoformat(eta)
    # Celery reads a naive ETA as UTC.
    return due if due.tzinfo else due.replace(tzinfo=datetime.timezone.utc)
