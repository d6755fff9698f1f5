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
import importlib
import inspect
import json
import os

import pytz
from celery.app.defaults import NAMESPACES, _TO_NEW_KEY, flatten

from . import filesystem
from .errors import ConfigError, closest, suggest
from .ini import (check_paste_deploy, module_exists, read_ini, section_items, to_bool, to_dict,
                  to_list, to_literal, var_directory)
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

#: Settings Celery's table types as "any", by the type they really take.
TYPE_OVERRIDES = {
    'worker_concurrency': 'int',       # the worker would run with the CPUs
    'task_annotations': 'json',        # a dict or a list of them
    'task_routes': 'json',
    'database_engine_callback': 'string',
}

SERIALIZER_SETTINGS = ('task_serializer', 'result_serializer',
                       'event_serializer')
CONTENT_SETTINGS = ('accept_content', 'result_accept_content')


def load_celery_settings(path, app_settings=None, environ=None,
                         require_broker=False, variables=None):
    """Return the typed Celery settings that the ini at ``path`` asks for.

    ``app_settings`` are the Pyramid app's settings: seed-style names such as
    ``BROKER_URL`` written in ``[app:main]`` are honoured too, with the
    ``[celery]`` section taking precedence.  ``require_broker``: a process
    that sends or runs tasks must be told where the broker is (Celery's
    default, RabbitMQ on localhost, would be tried forever, silently).
    """
    environ = os.environ if environ is None else environ
    parser = read_ini(path, variables)
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
            sources[name] = (None, f'environment variable {variable}')
    if require_broker and not settings.get('use_celeryconfig'):
        check_broker_given(settings, path)
    check_urls(settings, path, sources)
    check_modules(settings, path, sources)
    check_transport_options(settings, path)
    apply_defaults(settings, path)
    check_safety(settings, path, sources)
    return settings


def check_ini(path, app_name='main', server_name='main', variables=None):
    """Everything about the ini that can be checked before any process
    starts: the file, the PasteDeploy sections (:func:`.ini.check_paste_
    deploy`) and Celery's settings.  ``variables``: pserve's ``key=value``
    arguments or ``--ini-var``, which ``%(key)s`` may use.  Checked once
    per process (``pceleryd`` checks, then Celery's ``--ini`` would)."""
    done = (os.path.abspath(path), app_name, server_name,
            tuple(sorted((variables or {}).items())))
    if done in _checked:
        return None
    parser = read_ini(path, variables)
    check_paste_deploy(parser, app_name, server_name)
    app_section = f'app:{app_name}'
    app_settings = dict(section_items(parser, app_section)) \
        if parser.has_section(app_section) else {}
    settings = load_celery_settings(path, app_settings, require_broker=True,
                                    variables=variables)
    _checked.add(done)
    return settings


_checked = set()


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
    """Convert the string ``value`` to the type Celery declares for ``name``
    (or :data:`TYPE_OVERRIDES` where it declares "any"); a number below
    zero only where Celery's own default is one."""
    option = CELERY_OPTIONS[name]
    kind = TYPE_OVERRIDES.get(name, option.type)
    kind = kind.__name__ if isinstance(kind, type) else kind
    value = value.strip()
    if kind in ('string', 'str'):
        return value or None
    if kind == 'bool':
        return to_bool(path, section, key, value)
    try:
        converted = CONVERTERS[kind](value)
    except ValueError as exc:
        reason = str(exc).split(':')[0] if kind == 'json' else exc
        raise ConfigError(path, section, key,
                          f'"{value}" is not {ARTICLES[kind]}: {reason}',
                          HINTS.get(kind)) from None
    if kind in ('int', 'float') and converted < 0 and not (
            isinstance(option.default, (int, float)) and option.default < 0):
        raise ConfigError(path, section, key, f'{value} is below zero',
                          f'write 0 or more (Celery\'s default: '
                          f'{option.default})')
    return converted


def to_json(value):
    """JSON, or the dotted name of an object (Celery takes either)."""
    if not value.startswith(('{', '[')):
        return value
    parsed = json.loads(value)
    if not isinstance(parsed, (dict, list)):
        raise ValueError('expected a JSON object or list')
    return parsed


CONVERTERS = {
    'int': int,
    'float': float,
    'bytes': str.encode,
    'list': to_list,
    'tuple': lambda value: tuple(to_list(value)),
    'dict': to_dict,
    'any': to_literal,
    'json': to_json,
}
ARTICLES = {'int': 'an integer', 'float': 'a number', 'list': 'a list',
            'tuple': 'a list', 'dict': 'a JSON object', 'bytes': 'bytes',
            'any': 'a value', 'json': 'a JSON object or list'}
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


# -- what the values name ----------------------------------------------------

def error_at(path, sources, name, problem, hint=None):
    """A ConfigError where setting ``name`` came from: a section and key,
    or an environment variable."""
    section, key = sources.get(name, ('celery', name))
    if section is None:  # from the environment
        return ConfigError(path, None, None, f'{key} (which overrides '
                           f'{name}): {problem}', hint)
    return ConfigError(path, section, key, problem, hint)


def check_broker_given(settings, path):
    if not settings.get('broker_url'):
        raise ConfigError(path, 'celery', 'broker_url', 'missing: no broker '
                          'is configured', 'add a [celery] section with '
                          'broker_url (filesystem://localhost// needs no '
                          'server), or set CELERY_BROKER_URL')


#: Broker URLs: kombu's transport names.
BROKER_URL_SETTINGS = ('broker_url', 'broker_read_url', 'broker_write_url')


def check_urls(settings, path, sources):
    """The broker's and the result backend's URLs name a transport or
    backend that exists (the scheme is quoted, never the URL: it may hold a
    password)."""
    from celery.app.backends import BACKEND_ALIASES
    from kombu.transport import TRANSPORT_ALIASES
    from kombu.utils.url import parse_url

    for name in BROKER_URL_SETTINGS:
        if not settings.get(name) or settings.get('broker_transport'):
            continue
        for url in str(settings[name]).split(';'):
            scheme = url_scheme(url.strip())
            if scheme is None:
                raise error_at(path, sources, name, 'not a URL',
                               'write e.g. redis://localhost:6379/0 or '
                               'filesystem://localhost//')
            if scheme not in TRANSPORT_ALIASES:
                raise error_at(path, sources, name,
                               f'"{scheme}://" is not a broker transport',
                               suggest(scheme, TRANSPORT_ALIASES)
                               or 'use amqp, redis, filesystem or another '
                               "of kombu's transports")
            try:
                parse_url(url.strip()).get('port')
            except ValueError as exc:
                raise error_at(path, sources, name, f'not a valid URL: {exc}',
                               'check the host and port') from None
    backend = settings.get('result_backend')
    if backend:
        check_backend(path, sources, str(backend).strip(), BACKEND_ALIASES)


def url_scheme(url):
    """``amqp`` of ``amqp://...``, ``sqla`` of ``sqla+sqlite://...``."""
    scheme, sep, _ = url.partition('://')
    if not sep or not scheme:
        return None
    return scheme.partition('+')[0].lower()


def check_backend(path, sources, url, aliases):
    scheme, sep, rest = url.partition('://')
    name = scheme.partition('+')[0] if sep else url
    if name in aliases:
        if sep and '+' in scheme and name in ('db', 'database'):
            check_sqlalchemy_url(path, sources, url.partition('+')[2])
        return
    if not sep and '.' in name and module_exists(
            name.replace(':', '.').rpartition('.')[0]):
        return  # a dotted path to a backend class
    raise error_at(path, sources, 'result_backend',
                   f'"{name}" is not a result backend',
                   suggest(name, aliases) or 'use e.g. redis://, rpc:// or '
                   'db+sqlite:///%(here)s/var/results.sqlite')


def check_sqlalchemy_url(path, sources, url, name='result_backend'):
    problem = sqlalchemy_url_problem(url)
    if problem:
        raise error_at(path, sources, name, *problem)


def sqlalchemy_url_problem(url):
    """``(problem, hint)`` if SQLAlchemy cannot use ``url`` (its syntax, its
    dialect, its driver installed), else None."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    example = 'write e.g. sqlite:///%(here)s/var/myapp.sqlite'
    try:
        parsed = make_url(url)
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        from sqlalchemy.dialects import __all__ as dialects
        name = url.partition('://')[0]
        return (f'"{name}" is not a database SQLAlchemy knows',
                suggest(name.partition('+')[0], dialects)
                or 'use e.g. sqlite, postgresql+psycopg or mysql+pymysql')
    except ArgumentError:
        return 'not a SQLAlchemy URL', example
    except ValueError as exc:  # a port that is not a number
        return f'not a valid URL: {exc}', example
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        return (f'the driver of {parsed.drivername} is not installed '
                f'({exc})', f'pip install {exc.name or "the driver"}')
    return None


#: Settings that list modules the worker imports.
MODULE_SETTINGS = ('imports', 'include')


def check_modules(settings, path, sources):
    """Every module in ``imports`` and ``include`` exists: the worker
    imports them as it starts, and the web app must not start without
    them either (it would send tasks no worker knows)."""
    for name in MODULE_SETTINGS:
        for module in settings.get(name) or ():
            if not isinstance(module, str) or not module_exists(module):
                raise error_at(path, sources, name, f'no module named '
                               f'"{module}"', suggest_module(str(module)))


def suggest_module(name):
    """'did you mean X?' among the modules beside the one named."""
    import pkgutil

    parent, _, _ = name.rpartition('.')
    if parent and not module_exists(parent):
        return suggest_module(parent) or f'there is no "{parent}" either'
    if parent:
        package = importlib.import_module(parent)
        found = [f'{parent}.{m.name}' for m in pkgutil.iter_modules(
            getattr(package, '__path__', []))]
    else:
        found = [m.name for m in pkgutil.iter_modules()]
    return suggest(name, found) or 'check the dotted name of the module'


def transport_option_types():
    """``{option: type}`` for kombu's filesystem (and myapp's), Redis and
    AMQP transports and kombu's connection: the keys
    ``[celery:broker_transport_options]`` may hold.  Types come from each
    option's default where it has one (None: any value)."""
    import amqp
    from kombu.transport import redis, virtual

    def typed(default):  # numbers only: a bool option may take more
        return float if isinstance(default, (int, float)) and \
            not isinstance(default, bool) else None

    types = {
        # kombu.Connection: retrying the connection
        'max_retries': float, 'interval_start': float, 'interval_step': float,
        'interval_max': float, 'connect_retries_timeout': float,
        'polling_interval': float,
        # kombu's filesystem transport (and .filesystem)
        'data_folder_in': str, 'data_folder_out': str, 'control_folder': str,
        'processed_folder': str, 'store_processed': bool,
        'ack_emulation': bool, 'confirm_publish': bool,
        # Redis: read by the transport itself, not its channels
        'reauth_check_interval': float, 'result_chord_ordered': bool,
        'retry_policy': dict,
    }
    for channel in (virtual.Channel, redis.Channel, redis.SentinelChannel):
        for name in channel.from_transport_options:
            types.setdefault(name, typed(getattr(channel, name, None)))
    for name, parameter in inspect.signature(
            amqp.Connection.__init__).parameters.items():
        if name not in ('self', 'kwargs', 'host', 'userid', 'password'):
            default = parameter.default
            types.setdefault(name, None if default is inspect._empty
                             else typed(default))
    return types


#: Transports whose options are known; others' are passed on unchecked.
CHECKED_TRANSPORTS = ('filesystem', 'redis', 'rediss', 'sentinel', 'amqp',
                      'amqps', 'pyamqp', 'memory')
TYPE_NAMES = {float: 'a number', bool: 'true or false', str: 'text',
              dict: 'a JSON object'}


def check_transport_options(settings, path):
    """``[celery:broker_transport_options]``: a key no transport reads is
    a typo (with the closest known key); a number must be a number."""
    options = settings.get('broker_transport_options')
    scheme = url_scheme(str(settings.get('broker_url') or ''))
    if not options or scheme not in CHECKED_TRANSPORTS:
        return
    section = 'celery:broker_transport_options'
    types = transport_option_types()
    for key, value in options.items():
        if key not in types:
            raise ConfigError(path, section, key,
                              f'not an option of the {scheme} transport',
                              suggest(key, types) or 'see kombu\'s '
                              'documentation of the transport')
        kind = types[key]
        fits = (kind is None or value is None or isinstance(value, kind)
                or (kind is float and isinstance(value, int))
                or (kind is str and value is not None))
        if kind is float and isinstance(value, bool):
            fits = False
        if not fits:
            raise ConfigError(path, section, key,
                              f'"{value}" is not {TYPE_NAMES[kind]}',
                              'write e.g. 0.05' if kind is float else None)
        if kind is float and value < 0:
            raise ConfigError(path, section, key, f'{value} is below zero',
                              'write 0 or more')


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
        # A message the worker cannot decode fails its job (.delivery).
        'worker_consumer': 'myapp.celery_integration.delivery:Consumer',
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
