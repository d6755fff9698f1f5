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
from typing import NamedTuple, Optional

import pytz
from celery.schedules import BaseSchedule, crontab, maybe_schedule, solar
from celery.utils.time import timezone as celery_zones

from .errors import ConfigError, suggest
from .ini import to_bool

SCHEDULE_TYPES = ('crontab', 'timedelta', 'integer', 'solar', 'clocked')
KNOWN_KEYS = ('task', 'type', 'schedule', 'args', 'kwargs', 'options',
              'enabled', 'timezone')
CRONTAB_FIELDS = ('minute', 'hour', 'day_of_week', 'day_of_month',
                  'month_of_year')
TIMEDELTA_FIELDS = ('weeks', 'days', 'hours', 'minutes', 'seconds',
                    'milliseconds', 'microseconds')
SOLAR_FIELDS = ('event', 'latitude', 'longitude')
CLOCKED_FIELDS = ('at',)

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
    'clocked': '{"at": "2026-12-24T08:00:00"}',
}


class Definition(NamedTuple):
    """A periodic job as written: in a ``[celerybeat:NAME]`` section, a
    ``periodic_jobs`` row or an API request (JSON values, not text)."""
    task: str
    type: str
    schedule: object
    args: list = []
    kwargs: dict = {}
    options: dict = {}
    timezone: Optional[str] = None
    enabled: bool = True

    def celery_schedule(self, app=None):
        """The Celery schedule object beat evaluates (see BUILDERS)."""
        return BUILDERS[self.type](self.schedule, self.timezone, app)

    def entry(self, app=None):
        """The ``beat_schedule`` entry Celery's own schedulers read."""
        return {'task': self.task, 'schedule': self.celery_schedule(app),
                'args': self.args, 'kwargs': self.kwargs,
                'options': dict(self.options)}


def parse_beat_section(path, section, items):
    """Return the ``beat_schedule`` entry for one section, or None if disabled.

    The task's name and arguments are checked later, by
    :func:`check_beat_schedule`, once the application has registered its
    tasks.
    """
    definition = beat_definition(path, section, items)
    return definition.entry() if definition.enabled else None


def beat_definition(path, section, items):
    """The :class:`Definition` a ``[celerybeat:NAME]`` section's text makes,
    checked (but for its task: see :func:`check_task_call`)."""
    def error(key, problem, hint=None):
        return ConfigError(path, section, key, problem, hint)

    for key in items:
        if key not in KNOWN_KEYS:
            raise error(key, 'unknown key', suggest(key, KNOWN_KEYS))
    for key in ('task', 'type', 'schedule'):
        if not items.get(key, '').strip():
            raise error(key, 'missing', 'a periodic job needs task, type '
                        'and schedule')
    kind = items['type'].strip()
    values = {'task': items['task'].strip(), 'type': kind,
              'timezone': items.get('timezone', '').strip() or None}
    hint = f'for example {EXAMPLES[kind]}' if kind in EXAMPLES else None
    values['schedule'] = json_value(error, 'schedule', items['schedule'],
                                    hint)
    for key in ('args', 'kwargs', 'options'):
        if key in items:
            values[key] = json_value(error, key, items[key])
    if 'enabled' in items:
        values['enabled'] = to_bool(path, section, 'enabled',
                                    items['enabled'])
    return checked_definition(error, values)


def checked_definition(error, values):
    """A :class:`Definition` of ``values`` (JSON values by field name), or
    ``error(field, problem, hint)`` raised for the first thing wrong.

    The one check of a periodic job's definition, wherever it comes from:
    an ini section and an API request are refused for the same reasons.
    """
    kind = values['type']
    if kind not in SCHEDULE_TYPES:
        raise error('type', f'unknown schedule type "{kind}"',
                    f'use one of {", ".join(SCHEDULE_TYPES)}')
    zone = values.get('timezone')
    if zone is not None:
        problem = timezone_problem(zone)
        if problem:
            raise error('timezone', *problem)
    expected = {'args': list, 'kwargs': dict, 'options': dict}
    for key, json_type in expected.items():
        if key in values and not isinstance(values[key], json_type):
            raise error(key, f'must be a JSON {JSON_NAMES[json_type]}')
    check_options(error, values.get('options', {}))
    definition = Definition(**values)
    try:
        # Asked once when it is next due: a time Python's dates cannot
        # hold (a date before year 1 in UTC, an interval of a billion
        # days) overflows there, and is refused here, not in beat.
        maybe_schedule(definition.celery_schedule()).is_due(
            datetime.datetime.now(datetime.timezone.utc))
    except (TypeError, ValueError, OverflowError) as exc:
        raise error('schedule', f'not a valid {kind} schedule: {exc}',
                    f'for example {EXAMPLES[kind]}') from None
    return definition


def timezone_problem(zone):
    """None for a zone the tz database knows; else (problem, hint)."""
    if isinstance(zone, str) and zone in pytz.all_timezones_set:
        return None
    close = difflib.get_close_matches(str(zone), pytz.all_timezones, n=3)
    hint = ('did you mean ' + ' or '.join(f'"{c}"' for c in close) + '?'
            if close else 'use a name from the tz database, e.g. '
            'Europe/Paris or Asia/Tokyo')
    return f'unknown time zone "{zone}"', hint


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


# -- schedule types ------------------------------------------------------

class zoned_crontab(crontab):  # noqa: N801  (Celery's naming)
    """A crontab read in a zone of its own rather than the app's.

    Celery's crontab matches its fields in ``self.tz`` (the app's zone) and
    copes with daylight saving there: a 02:30 that a spring day lacks runs
    once, an hour later; a 02:30 that an autumn day has twice runs once.
    """

    def __init__(self, *args, zone=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.zone = zone

    @property
    def tz(self):
        if self.zone:
            return celery_zones.get_timezone(self.zone)
        return self.app.timezone

    # Copies (schedule_info copies before binding a clock) keep the zone.
    def __reduce__(self):
        cls, args, state = super().__reduce__()
        return cls, args, dict(state, zone=self.zone)

    def __setstate__(self, state):
        state = dict(state)
        self.zone = state.pop('zone', None)
        super().__setstate__(state)


class clocked(BaseSchedule):  # noqa: N801  (Celery's naming)
    """Once, at ``local_at``; never again once it has run.

    A time without an offset is read in ``zone``, else in the app's zone
    when the schedule is evaluated (not when it is parsed: an ini's
    sections are read before its ``[celery] timezone`` is applied).
    """

    #: What beat is told to wait when nothing is left to run.
    NEVER = 365 * 86400.0

    def __init__(self, local_at, zone=None, nowfun=None, app=None):
        super().__init__(nowfun=nowfun, app=app)
        self.local_at, self.zone = local_at, zone

    @property
    def tz(self):
        if self.zone:
            return celery_zones.get_timezone(self.zone)
        return self.app.timezone

    @property
    def at(self):
        """The moment, in UTC."""
        at = self.local_at
        if at.tzinfo is None:
            tz = self.tz
            at = tz.localize(at) if hasattr(tz, 'localize') \
                else at.replace(tzinfo=tz)
        return at.astimezone(datetime.timezone.utc)

    def remaining_estimate(self, last_run_at):
        return self.at - self.maybe_make_aware(self.now())

    def is_due(self, last_run_at):
        """Due from ``at`` on, unless it ran then or later (a run before
        ``at``, or None, is no run of this one)."""
        if last_run_at is not None and \
                self.maybe_make_aware(last_run_at) >= self.at:
            return False, self.NEVER
        remaining = self.remaining_estimate(last_run_at).total_seconds()
        if remaining <= 0:
            return True, self.NEVER
        return False, remaining

    def __repr__(self):
        return f'<clocked: {self.at.isoformat()}>'

    def __eq__(self, other):
        if isinstance(other, clocked):
            return (self.local_at, self.zone) == (other.local_at, other.zone)
        return NotImplemented


def build_crontab(value, zone=None, app=None):
    fields(value, CRONTAB_FIELDS, 'crontab')
    # Build field by field so the message names the field that is wrong.
    for key, field in value.items():
        try:
            crontab(**{key: str(field)})
        except ValueError as exc:
            raise ValueError(f'{key} "{field}": {exc}') from None
    return zoned_crontab(zone=zone, app=app,
                         **{key: str(field) for key, field in value.items()})


def build_timedelta(value, zone=None, app=None):
    delta = datetime.timedelta(**fields(value, TIMEDELTA_FIELDS, 'timedelta'))
    if delta <= datetime.timedelta(0):
        raise ValueError('the interval must be longer than zero')
    return delta


def build_integer(value, zone=None, app=None):
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or value <= 0:
        raise ValueError('expected a number of seconds greater than zero')
    return value


def build_solar(value, zone=None, app=None):
    fields(value, SOLAR_FIELDS, 'solar')
    missing = [key for key in SOLAR_FIELDS if key not in value]
    if missing:
        raise ValueError(f'missing {", ".join(missing)}')
    for key in ('latitude', 'longitude'):
        # float(True) is 1.0: a boolean is no coordinate.
        if isinstance(value[key], bool):
            raise ValueError(f'"{key}" must be a number, not {value[key]}')
    return solar(value['event'], float(value['latitude']),
                 float(value['longitude']), app=app)


def build_clocked(value, zone=None, app=None):
    """``{"at": "2026-12-24T08:00:00"}``: an ISO time, read in ``zone`` (or
    the app's) unless it gives its own offset."""
    fields(value, CLOCKED_FIELDS, 'clocked')
    if not isinstance(value.get('at'), str):
        raise ValueError('"at" must be an ISO 8601 time, e.g. '
                         '"2026-12-24T08:00:00"')
    try:
        at = datetime.datetime.fromisoformat(value['at'])
    except ValueError:
        raise ValueError(f'"at": "{value["at"]}" is not an ISO 8601 time, '
                         'e.g. "2026-12-24T08:00:00"') from None
    return clocked(at, zone, app=app)


BUILDERS = {
    'crontab': build_crontab,
    'timedelta': build_timedelta,
    'integer': build_integer,
    'solar': build_solar,
    'clocked': build_clocked,
}


def check_beat_schedule(path, app):
    """Check each periodic job's task exists and accepts its arguments.

    Runs once the application has registered its tasks (a configuration
    action), so that a typo stops start-up instead of failing at 08:00 on
    the 1st of the month.
    """
    for name, entry in (app.conf.beat_schedule or {}).items():
        problem = task_call_problem(app, entry['task'], entry.get('args', ()),
                                    entry.get('kwargs', {}))
        if problem:
            raise ConfigError(path, f'celerybeat:{name}', *problem)


def task_call_problem(app, task_name, args, kwargs):
    """None if ``task_name`` is registered and takes these arguments; else
    ``(key, problem, hint)``, the key being ``task``, ``args`` or
    ``kwargs``."""
    task = app.tasks.get(task_name)
    if task is None:
        own = [t for t in app.tasks if not t.startswith('celery.')]
        return ('task', f'no task named "{task_name}" is registered',
                suggest(task_name, own))
    try:
        task.__header__(*args, **kwargs)
    except TypeError as exc:
        key = 'kwargs' if 'keyword' in str(exc) else 'args'
        return (key, f'the arguments do not fit {task.name}: {exc}',
                f'its parameters are {describe_parameters(task)}')
    return None


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
