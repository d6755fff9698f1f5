"""Turning what tasks hand over into what a job row can hold."""
import json
import math
import re

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
    if is_flat(value):  # most arguments: a copy is all it takes
        return dict(value) if isinstance(value, dict) else list(value)
    try:
        return json.loads(celery_json_dumps(value))
    except (TypeError, ValueError):
        return repr(value)


#: What JSON carries as it is (not a subclass, which may encode otherwise).
SCALARS = frozenset((str, int, float, bool, type(None)))


def is_flat(value):
    """A list or tuple of scalars, or a dict of scalars by text keys?"""
    if isinstance(value, (list, tuple)):
        return all(type(item) in SCALARS for item in value)
    if type(value) is dict:
        return all(type(key) is str and type(item) in SCALARS
                   for key, item in value.items())
    return False


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


# -- what a job's arguments may be ---------------------------------------
#
# Stdlib only, and nothing of myapp: every sender's argument check
# (``PyramidTask.check_call``) may call :func:`check_arguments` too.

#: How deeply a JSON document may nest, counting the message or request
#: body that holds ``args`` and ``kwargs`` as level 1 (so ``args`` itself is
#: level 2).  Far below Python's recursion limit (1000), which JSON nested
#: some 950 levels deep reaches in the web app's or the worker's encoder.
MAX_JSON_DEPTH = 32

#: NUL (PostgreSQL's text refuses it) and surrogates (only a lone half of a
#: pair, or an undecodable byte smuggled in by ``surrogateescape``, gives
#: one in a ``str``): what no column or broker message should carry.
INVALID_TEXT = re.compile('[\x00\ud800-\udfff]')


class UnfitValue(ValueError):
    """A value JSON, a job's row or a task message cannot carry as is.

    ``where`` says where in the value, e.g. ``[0]["x"]`` (empty for the
    value itself).
    """

    def __init__(self, problem, where=''):
        super().__init__(f'{problem} at {where}' if where else problem)
        self.problem, self.where = problem, where


def text_problem(text):
    """Why ``text`` cannot be stored as text, or None."""
    found = INVALID_TEXT.search(text)
    if found is None:
        return None
    if found.group() == '\x00':
        return 'text with a NUL character'
    return 'text that is not valid Unicode: not UTF-8, or a lone surrogate'


def check_json_value(value, depth=1, limit=MAX_JSON_DEPTH):
    """Raise :class:`UnfitValue` unless ``value``, found at level ``depth``
    of a document, is plain JSON nested at most ``limit`` levels: objects
    with string keys, arrays (or tuples), strings without NUL or lone
    surrogates, finite numbers, booleans and null.

    Iterative and stopping at the limit: safe for values nested deeper than
    Python's recursion limit, and for lists that contain themselves.
    """
    stack = [(value, depth, '')]
    while stack:
        value, level, where = stack.pop()
        if isinstance(value, str):
            problem = text_problem(value)
            if problem:
                raise UnfitValue(problem, where)
        elif value is None or isinstance(value, (bool, int)):
            continue
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise UnfitValue(f'{value} is not a JSON number', where)
        elif isinstance(value, (list, tuple, dict)):
            if level > limit:
                raise UnfitValue(f'nested deeper than {limit} levels', where)
            if isinstance(value, dict):
                items = []
                for key, item in value.items():
                    if not isinstance(key, str):
                        raise UnfitValue('an object key that is not a string',
                                         where)
                    problem = text_problem(key)
                    if problem:
                        raise UnfitValue(f'a key: {problem}', where)
                    items.append((item, f'{where}[{json.dumps(key)}]'))
            else:
                items = [(item, f'{where}[{index}]')
                         for index, item in enumerate(value)]
            stack.extend((item, level + 1, path)
                         for item, path in reversed(items))
        else:
            raise UnfitValue(f'{type(value).__name__} is not JSON', where)


def check_arguments(args, kwargs):
    """Raise :class:`UnfitValue` unless a task's ``args`` and ``kwargs`` are
    plain JSON nested at most :data:`MAX_JSON_DEPTH` levels, counted as in
    the message (and in ``POST /api/jobs``): the body is level 1, ``args``
    and ``kwargs`` level 2.  The API refuses what this refuses."""
    check_json_value(list(args or ()), depth=2)
    check_json_value(dict(kwargs or {}), depth=2)


# -- previews ------------------------------------------------------------

#: How much of a value's JSON lists and pages show.
PREVIEW_CHARS = 200


def json_preview(value, limit=PREVIEW_CHARS):
    """(the start of ``value``'s JSON text, whether it was cut).

    At most ``limit`` characters, the last an ellipsis when cut.  The
    value's encoding stops as soon as the limit is passed, so a huge
    value costs no more than a small one.
    """
    encoder = json.JSONEncoder(ensure_ascii=False, default=repr)
    text, size = [], 0
    try:
        for chunk in encoder.iterencode(value):
            text.append(chunk)
            size += len(chunk)
            if size > limit:
                break
    except (ValueError, RecursionError):  # a value only pshell could send
        return '…', True
    text = ''.join(text)
    if len(text) <= limit:
        return text, False
    return text[:limit - 1] + '…', True
