"""Turning what tasks hand over into what a job row can hold."""
import json

from kombu.utils.json import dumps as celery_json_dumps

#: Enough of a traceback to find the failing line: its end.
TRACEBACK_LIMIT = 8 * 1024
MESSAGE_LIMIT = 2 * 1024


def jsonable(value):
    """``value`` as Celery's JSON serializer carries it, or its repr.

    Celery encodes dates, UUIDs and decimals that plain ``json`` refuses;
    storing its encoding keeps the row faithful to what was sent, and lets
    the sweeper send exactly that again.  A value Celery cannot encode
    either is kept as its repr, so recording never breaks a task.
    """
    try:
        return json.loads(celery_json_dumps(value))
    except (TypeError, ValueError):
        return repr(value)


def head(text, limit=MESSAGE_LIMIT):
    text = str(text)
    return text if len(text) <= limit else text[:limit - 1] + '…'


def tail(text, limit=TRACEBACK_LIMIT):
    if text is None:
        return None
    return text if len(text) <= limit else '…' + text[-(limit - 1):]


def error_type(exc):
    """``KeyError``, ``sqlalchemy.exc.OperationalError``: no "builtins."."""
    cls = type(exc)
    if cls.__module__ == 'builtins':
        return cls.__qualname__
    return f'{cls.__module__}.{cls.__qualname__}'


def plain_number(value):
    """3.0 → 3: progress is stored as a float, mostly counts whole steps."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
