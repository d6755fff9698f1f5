"""The send options a job keeps, so that the sweeper can send it again.

``apply_async`` options may hold objects (a ``producer``, an ``Exchange``)
and relative times; a job row keeps only plain JSON, with absolute times.
"""
import datetime
import json

#: Options kept as they are when they are plain values (a group
#: member's ``group_id`` and ``group_index`` too, and below its chord's
#: callback: sent again, it still counts in its group's result).
PLAIN_OPTIONS = ('queue', 'routing_key', 'exchange', 'priority',
                 'time_limit', 'soft_time_limit', 'group_id', 'group_index')
#: The options that make a job a member of a group, or of a chord's
#: header (``chord``: the callback's signature, which Celery sends once
#: every member has run).
GROUP_OPTIONS = ('group_id', 'group_index', 'chord')
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
    chord = plain_json(options.get('chord'))
    if isinstance(chord, dict):
        stored['chord'] = chord
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


def plain_json(value):
    """``value`` as plain JSON (a signature is a dict), or None."""
    if value is None:
        return None
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError):
        return None


def chord_callback_id(stored):
    """The id of the callback of the chord whose header the job is in."""
    chord = stored.get('chord') or {}
    return (chord.get('options') or {}).get('task_id')


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
