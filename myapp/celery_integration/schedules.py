"""Periodic jobs written as ``[celerybeat:NAME]`` sections.

The format is pyramid_celery's (``task``, ``type``, ``schedule`` as JSON,
optional ``args``, ``kwargs`` and ``options``), with two additions: the
``solar`` type and ``enabled = false``.  Every mistake is reported when the
file is read, naming the section and key, never later when beat fires.
"""
import datetime
import difflib
import inspect
import json

from celery.schedules import crontab, solar

from .errors import ConfigError, suggest
from .ini import to_bool

SCHEDULE_TYPES = ('crontab', 'timedelta', 'integer', 'solar')
KNOWN_KEYS = ('task', 'type', 'schedule', 'args', 'kwargs', 'options',
              'enabled')
CRONTAB_FIELDS = ('minute', 'hour', 'day_of_week', 'day_of_month',
                  'month_of_year')
TIMEDELTA_FIELDS = ('weeks', 'days', 'hours', 'minutes', 'seconds',
                    'milliseconds', 'microseconds')
SOLAR_FIELDS = ('event', 'latitude', 'longitude')

#: ``apply_async`` options each run of a periodic job may be sent with.
PERIODIC_OPTIONS = ('queue', 'routing_key', 'exchange', 'priority',
                    'expires', 'countdown', 'headers', 'time_limit',
                    'soft_time_limit', 'ignore_result', 'retry',
                    'retry_policy')
#: Options that hold for one run only, and why (pyramid_celery documents
#: ``options = {"task_id": "4445"}``, which fails every tick but the first).
UNREPEATABLE_OPTIONS = {
    'task_id': 'every run needs an id of its own, and beat would send the '
               'same one each time',
    'eta': 'it is one moment: every run after it would start at once',
}

EXAMPLES = {
    'crontab': '{"minute": "0", "hour": "8", "day_of_month": "1"}',
    'timedelta': '{"seconds": 30}',
    'integer': '30',
    'solar': '{"event": "sunset", "latitude": 35.68, "longitude": 139.69}',
}


def parse_beat_section(path, section, items):
    """Return the ``beat_schedule`` entry for one section, or None if disabled.

    The task's name and arguments are checked later, by
    :func:`check_beat_schedule`, once the application has registered its
    tasks.
    """
    def error(key, problem, hint=None):
        return ConfigError(path, section, key, problem, hint)

    for key in items:
        if key not in KNOWN_KEYS:
            raise error(key, 'unknown key', suggest(key, KNOWN_KEYS))
    for key in ('task', 'type', 'schedule'):
        if not items.get(key, '').strip():
            raise error(key, 'missing', 'a periodic job needs task, type '
                        'and schedule')
    if 'enabled' in items and not to_bool(path, section, 'enabled',
                                          items['enabled']):
        return None

    kind = items['type'].strip()
    if kind not in SCHEDULE_TYPES:
        raise error('type', f'unknown schedule type "{kind}"',
                    f'use one of {", ".join(SCHEDULE_TYPES)}')
    value = json_value(error, 'schedule', items['schedule'],
                       f'for example {EXAMPLES[kind]}')
    try:
        schedule = BUILDERS[kind](value)
    except (TypeError, ValueError) as exc:
        raise error('schedule', f'not a valid {kind} schedule: {exc}',
                    f'for example {EXAMPLES[kind]}') from None

    entry = {'task': items['task'].strip(), 'schedule': schedule}
    expected = {'args': list, 'kwargs': dict, 'options': dict}
    for key, kind in expected.items():
        if key in items:
            entry[key] = json_value(error, key, items[key])
            if not isinstance(entry[key], kind):
                raise error(key, f'must be a JSON {JSON_NAMES[kind]}')
    check_options(error, entry.get('options', {}))
    return entry


def check_options(error, options):
    """Only ``apply_async`` options that can work on every run."""
    for name in options:
        if name in UNREPEATABLE_OPTIONS:
            raise error('options', f'"{name}" cannot be given to a periodic '
                        f'job: {UNREPEATABLE_OPTIONS[name]}',
                        f'remove it; a periodic job may take '
                        f'{", ".join(PERIODIC_OPTIONS)}')
        if name not in PERIODIC_OPTIONS:
            raise error('options', f'"{name}" is not an option of a '
                        'periodic job',
                        suggest(name, PERIODIC_OPTIONS)
                        or f'use one of {", ".join(PERIODIC_OPTIONS)}')


JSON_NAMES = {list: 'list', dict: 'object'}


def json_value(error, key, text, hint=None):
    try:
        return json.loads(text)
    except ValueError as exc:
        raise error(key, f'not valid JSON ({exc})', hint) from None


def fields(value, allowed, kind):
    if not isinstance(value, dict):
        raise ValueError(f'expected a JSON object with keys from '
                         f'{", ".join(allowed)}')
    for key in value:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ''
            raise ValueError(f'unknown {kind} field "{key}"{hint}')
    return value


def build_crontab(value):
    fields(value, CRONTAB_FIELDS, 'crontab')
    # Build field by field so the message names the field that is wrong.
    for key, field in value.items():
        try:
            crontab(**{key: str(field)})
        except ValueError as exc:
            raise ValueError(f'{key} "{field}": {exc}') from None
    return crontab(**{key: str(field) for key, field in value.items()})


def build_timedelta(value):
    delta = datetime.timedelta(**fields(value, TIMEDELTA_FIELDS, 'timedelta'))
    if delta <= datetime.timedelta(0):
        raise ValueError('the interval must be longer than zero')
    return delta


def build_integer(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or value <= 0:
        raise ValueError('expected a number of seconds greater than zero')
    return value


def build_solar(value):
    fields(value, SOLAR_FIELDS, 'solar')
    missing = [key for key in SOLAR_FIELDS if key not in value]
    if missing:
        raise ValueError(f'missing {", ".join(missing)}')
    return solar(value['event'], float(value['latitude']),
                 float(value['longitude']))


BUILDERS = {
    'crontab': build_crontab,
    'timedelta': build_timedelta,
    'integer': build_integer,
    'solar': build_solar,
}


def check_beat_schedule(path, app):
    """Check each periodic job's task exists and accepts its arguments.

    Runs once the application has registered its tasks (a configuration
    action), so that a typo stops start-up instead of failing at 08:00 on
    the 1st of the month.
    """
    for name, entry in (app.conf.beat_schedule or {}).items():
        section = f'celerybeat:{name}'
        task = app.tasks.get(entry['task'])
        if task is None:
            own = [t for t in app.tasks if not t.startswith('celery.')]
            raise ConfigError(path, section, 'task',
                              f'no task named "{entry["task"]}" is registered',
                              suggest(entry['task'], own))
        try:
            task.__header__(*entry.get('args', ()), **entry.get('kwargs', {}))
        except TypeError as exc:
            key = 'kwargs' if 'keyword' in str(exc) else 'args'
            raise ConfigError(path, section, key,
                              f'the arguments do not fit {task.name}: {exc}',
                              f'its parameters are {describe_parameters(task)}'
                              ) from None


def check_routes(path, app):
    """Each ``[celeryroute:NAME]`` names a registered task (or, with ``*``,
    ``?`` or ``[``, a pattern that matches one): a route for a misspelt
    task routes nothing, silently."""
    import fnmatch

    from .ini import read_ini

    own = [t for t in app.tasks if not t.startswith('celery.')]
    for section in read_ini(path).sections():
        prefix, _, name = section.partition(':')
        if prefix != 'celeryroute' or name in app.tasks:
            continue
        if any(c in name for c in '*?[') and fnmatch.filter(own, name):
            continue
        raise ConfigError(path, section, None,
                          f'no task named "{name}" is registered',
                          suggest(name, own) or 'name the section after a '
                          'task: [celeryroute:myapp.tasks.add]')


def describe_parameters(task):
    signature = inspect.signature(task.run)
    names = [p for p in signature.parameters if p != 'self']
    return '(' + ', '.join(names) + ')'
