"""Read Celery's configuration from the PasteDeploy ini file.

pyramid_celery 4.0 reads the ``[celery]`` section with a bare ConfigParser and
hands Celery strings.  That loses ``%(here)s``, turns ``false`` into a truthy
string, ignores misspelt keys and drops most broker transport options.  This
module reads the same sections (and the seed articles' upper-case names) and
returns a dict of *typed* Celery settings, or raises :class:`ConfigError`
naming the file, section and key.

Every value is converted by the type Celery itself declares for the setting
(``celery.app.defaults``), so there is one rule for all settings rather than a
list of special cases.
"""
import difflib
import os

import pytz
from celery.app.defaults import NAMESPACES, _TO_NEW_KEY, flatten

from . import filesystem
from .errors import ConfigError, closest
from .ini import (read_ini, section_items, to_bool, to_dict, to_list,
                  to_literal, var_directory)
from .schedules import parse_beat_section
from .sqlite import tune_sqlite_engine

#: Celery's own settings, by their (lower-case, Celery 4+) name.
CELERY_OPTIONS = dict(flatten(NAMESPACES))

#: Celery 3 names (``BROKER_URL``, ``CELERY_TIMEZONE``...) to Celery 5 names.
#: Celery's table knows CELERY_ENABLE_UTC, the name its 3.x docs and seed 002
#: use, only as ENABLE_UTC.
LEGACY_NAMES = {old.upper(): new for old, new in _TO_NEW_KEY.items()}
LEGACY_NAMES['CELERY_ENABLE_UTC'] = 'enable_utc'

#: Keys that pyramid_celery itself reads from ``[celery]``.
PYRAMID_CELERY_KEYS = {'use_celeryconfig'}

#: Environment variables that override the ini, so production secrets need
#: not be written into it.  Celery reads the same two names itself.
ENVIRONMENT_OVERRIDES = {
    'CELERY_BROKER_URL': 'broker_url',
    'CELERY_RESULT_BACKEND': 'result_backend',
}

#: Serializers that execute code from the message when loading it.
UNSAFE_SERIALIZERS = {'pickle', 'application/x-python-serialize'}

SERIALIZER_SETTINGS = ('task_serializer', 'result_serializer',
                       'event_serializer')
CONTENT_SETTINGS = ('accept_content', 'result_accept_content')


def load_celery_settings(path, app_settings=None, environ=None):
    """Return the typed Celery settings that the ini at ``path`` asks for.

    ``app_settings`` are the Pyramid app's settings: seed-style names such as
    ``BROKER_URL`` written in ``[app:main]`` are honoured too, with the
    ``[celery]`` section taking precedence.
    """
    environ = os.environ if environ is None else environ
    parser = read_ini(path)
    path = parser.path
    settings = {}
    sources = {}

    def put(section, key, value):
        name = canonical_name(path, section, key)
        converted = convert(path, section, key, name, value)
        if name in sources:
            check_no_conflict(path, section, key, name, sources[name],
                              converted == settings[name])
        settings[name] = converted
        sources[name] = (section, key)

    for section, key, value in legacy_app_settings(parser, app_settings):
        put(section, key, value)
    if parser.has_section('celery'):
        for key, value in section_items(parser, 'celery'):
            if key.lower() in PYRAMID_CELERY_KEYS:
                settings[key.lower()] = to_bool(path, 'celery', key, value)
            else:
                put('celery', key, value)
    read_subsections(parser, path, settings)

    for variable, name in ENVIRONMENT_OVERRIDES.items():
        if environ.get(variable):
            settings[name] = environ[variable]
    apply_defaults(settings, path)
    check_safety(settings, path, sources)
    return settings


def check_no_conflict(path, section, key, name, earlier, same_value):
    """One setting given twice: in one section always a mistake; in
    ``[app:main]`` and ``[celery]`` (seed 002 and pyramid_celery's styles)
    only when the two values differ, since only one of them can apply."""
    earlier_section, earlier_key = earlier
    if earlier_section == section:
        raise ConfigError(path, section, key,
                          f'sets {name} a second time '
                          f'(also as "{earlier_key}")',
                          'keep one of the two lines')
    if not same_value:
        raise ConfigError(path, section, key,
                          f'sets {name} to another value than '
                          f'[{earlier_section}] "{earlier_key}" does',
                          'keep one of the two (the [celery] section is '
                          "Celery's own place)")


def legacy_app_settings(parser, app_settings):
    """Seed 002 writes ``BROKER_URL`` and ``CELERY_*`` in ``[app:main]``."""
    if not app_settings:
        return
    app_sections = [s for s in parser.sections() if s.startswith('app:')]
    for key, value in app_settings.items():
        if not isinstance(value, str) or not looks_like_legacy_name(key):
            continue
        section = next((s for s in app_sections
                        if parser.has_option(s, key)), 'app:main')
        yield section, key, value


def looks_like_legacy_name(key):
    upper = key.upper()
    return key == upper and (upper.startswith(('CELERY', 'BROKER_'))
                             or upper in LEGACY_NAMES)


def canonical_name(path, section, key):
    """Celery 5's name for ``key``, which may be spelt the Celery 3 way."""
    if key in CELERY_OPTIONS:
        return key
    if key.lower() in CELERY_OPTIONS:
        return key.lower()
    if key.upper() in LEGACY_NAMES:
        return LEGACY_NAMES[key.upper()]
    raise ConfigError(path, section, key, 'not a Celery setting',
                      suggest_setting(key, list(CELERY_OPTIONS)
                                      + list(LEGACY_NAMES)))


def suggest_setting(key, candidates):
    """'did you mean X?' for a setting or section name, Celery 3 names mapped
    to their Celery 5 ones, or a pointer to the docs."""
    match = closest(key, candidates)
    if match is None:
        return ('see "Configuration and defaults" in the Celery documentation '
                'for the valid names')
    new_name = LEGACY_NAMES.get(match.upper())
    if new_name and new_name != match.lower():
        return f'did you mean "{new_name}" (formerly {match.upper()})?'
    return f'did you mean "{match}"?'


# -- value conversion --------------------------------------------------------

def convert(path, section, key, name, value):
    """Convert the string ``value`` to the type Celery declares for ``name``."""
    kind = CELERY_OPTIONS[name].type
    kind = kind.__name__ if isinstance(kind, type) else kind
    value = value.strip()
    if kind in ('string', 'str'):
        return value or None
    if kind == 'bool':
        return to_bool(path, section, key, value)
    try:
        return CONVERTERS[kind](value)
    except ValueError as exc:
        raise ConfigError(path, section, key,
                          f'"{value}" is not {ARTICLES[kind]}: {exc}',
                          HINTS.get(kind)) from None


CONVERTERS = {
    'int': int,
    'float': float,
    'bytes': str.encode,
    'list': to_list,
    'tuple': lambda value: tuple(to_list(value)),
    'dict': to_dict,
    'any': to_literal,
}
ARTICLES = {'int': 'an integer', 'float': 'a number', 'list': 'a list',
            'tuple': 'a list', 'dict': 'a JSON object', 'bytes': 'bytes',
            'any': 'a value'}
HINTS = {
    'int': 'write a whole number such as 4',
    'float': 'write a number such as 0.5',
    'list': 'separate the items with spaces or commas',
    'tuple': 'separate the items with spaces or commas',
    'dict': 'write a JSON object, or put the keys in a [celery:NAME] section',
}


# -- sub-sections ------------------------------------------------------------

def read_subsections(parser, path, settings):
    """``[celery:NAME]``, ``[celerybeat:NAME]`` and ``[celeryroute:NAME]``."""
    beat_schedule = {}
    routes = {}
    for section in parser.sections():
        prefix, _, name = section.partition(':')
        if prefix == 'celery' and name:
            settings[dict_setting_name(path, section, name)] = {
                key: to_literal(value)
                for key, value in section_items(parser, section)}
        elif prefix == 'celerybeat':
            entry = parse_beat_section(path, section,
                                       dict(section_items(parser, section)))
            if entry is not None:
                beat_schedule[name] = entry
        elif prefix == 'celeryroute':
            routes[name] = route_entry(path, section,
                                       dict(section_items(parser, section)))
        elif prefix.lower().startswith('celery') and prefix not in (
                'celery', 'celerybeat', 'celeryroute'):
            raise ConfigError(path, section, None, 'unknown section',
                              suggest_setting(prefix, ['celery', 'celerybeat',
                                                       'celeryroute']))
    if beat_schedule:
        settings['beat_schedule'] = beat_schedule
    if routes:
        settings['task_routes'] = routes


def dict_setting_name(path, section, name):
    if CELERY_OPTIONS.get(name) is not None and \
            CELERY_OPTIONS[name].type == 'dict':
        return name
    dict_settings = [key for key, option in CELERY_OPTIONS.items()
                     if option.type == 'dict']
    raise ConfigError(path, section, None,
                      f'"{name}" is not a Celery setting that takes keys',
                      suggest_setting(name, dict_settings))


def route_entry(path, section, items):
    if 'queue' not in items:
        raise ConfigError(path, section, 'queue', 'missing',
                          'name the queue the task is routed to')
    unknown = set(items) - {'queue', 'routing_key'}
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(path, section, key, 'unknown key',
                          'a route takes queue and routing_key')
    return items


# -- defaults and safety -----------------------------------------------------

def apply_defaults(settings, path):
    """Safe, file-relative defaults that the ini may still override."""
    var = var_directory(path)
    defaults = {
        # JSON only: pickle runs code chosen by whoever can write to the broker.
        'accept_content': ['json'],
        'result_accept_content': ['json'],
        'task_serializer': 'json',
        'result_serializer': 'json',
        'event_serializer': 'json',
        # Results keep the task's name and arguments (seed 002's task_name).
        'result_extended': True,
        'broker_connection_retry_on_startup': True,
        # The ini's [loggers] sections configure logging, as for pserve.
        'worker_hijack_root_logger': False,
        # Beat's state lives beside the ini, not in the current directory.
        'beat_schedule_filename': os.path.join(var, 'celerybeat-schedule'),
    }
    if (settings.get('broker_url') or '').startswith('filesystem:'):
        # Never a half-written message (see .filesystem).
        defaults['broker_transport'] = f'{filesystem.__name__}:Transport'
    if (settings.get('result_backend') or '').startswith('db+sqlite:'):
        # Worker processes, beat and the web app write results at once.
        defaults['database_engine_callback'] = \
            f'{tune_sqlite_engine.__module__}.{tune_sqlite_engine.__name__}'
    for name, value in defaults.items():
        settings.setdefault(name, value)


def check_safety(settings, path, sources):
    def where(name):
        return sources.get(name, ('celery', name))

    for name in SERIALIZER_SETTINGS:
        if settings.get(name) in UNSAFE_SERIALIZERS:
            raise ConfigError(path, *where(name),
                              'pickle lets whoever can write to the broker '
                              'run code in the worker',
                              'use json (the default)')
    for name in CONTENT_SETTINGS:
        unsafe = set(settings.get(name) or ()) & UNSAFE_SERIALIZERS
        if unsafe:
            raise ConfigError(path, *where(name),
                              f'{sorted(unsafe)[0]} is not accepted: it lets '
                              'whoever can write to the broker run code',
                              'accept json only (the default)')
    timezone = settings.get('timezone')
    if timezone and timezone not in pytz.all_timezones_set:
        close = difflib.get_close_matches(timezone, pytz.all_timezones, n=3)
        hint = ('did you mean ' + ' or '.join(f'"{z}"' for z in close) + '?'
                if close else 'use a name such as Europe/Paris or UTC')
        raise ConfigError(path, *where('timezone'),
                          f'unknown time zone "{timezone}"', hint)
