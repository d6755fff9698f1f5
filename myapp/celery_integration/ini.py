"""Reading the PasteDeploy ini file: sections, keys and plain values.

What the values *mean* is for :mod:`.settings` (Celery's settings) and
:mod:`.schedules` (periodic jobs); both read the file through this module,
so that every error names the file, section and key the same way.
"""
import ast
import configparser
import importlib.util
import json
import logging
import os
import re
from importlib import metadata

from .errors import ConfigError, closest, suggest

TRUE_WORDS = {'true', 'yes', 'on', '1'}
FALSE_WORDS = {'false', 'no', 'off', '0'}


def var_directory(ini_path):
    """The folder beside the ini that holds beat's and the broker's state."""
    return os.path.join(os.path.dirname(os.path.abspath(ini_path)), 'var')


def read_ini(path, variables=None):
    """Parse ``path`` the way PasteDeploy does (``%(here)s``, keys keep case;
    ``variables``: more names for ``%(name)s``, as pserve's ``key=value``).

    Every way the file can fail to parse (missing, unreadable, not UTF-8, a
    line that is not ``key = value``, a key or section given twice) is a
    :class:`ConfigError` naming the line, and the section and key if any.
    """
    path = os.path.abspath(path)
    parser = configparser.ConfigParser(
        defaults={**(variables or {}), 'here': os.path.dirname(path),
                  '__file__': path})
    parser.optionxform = str
    try:
        with open(path, encoding='utf-8') as handle:
            parser.read_file(handle)
    except OSError as exc:
        raise ConfigError(path, None, None, f'cannot read it ({exc.strerror})',
                          'pass the path of an existing, readable ini file'
                          ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(path, None, None, f'not UTF-8 text (byte '
                          f'{exc.start} of the file)', 'save it as UTF-8'
                          ) from None
    except configparser.Error as exc:
        raise parse_error(path, exc) from None
    parser.path = path  # so that errors can name the file
    return parser


def parse_error(path, exc):
    """The :class:`ConfigError` for what configparser refused."""
    if isinstance(exc, configparser.DuplicateOptionError):
        return ConfigError(path, exc.section, exc.option,
                           f'given a second time (line {exc.lineno})',
                           'keep one of the two lines')
    if isinstance(exc, configparser.DuplicateSectionError):
        return ConfigError(path, exc.section, None,
                           f'a second section of this name (line '
                           f'{exc.lineno})', 'merge the two sections')
    if isinstance(exc, configparser.MissingSectionHeaderError):
        return ConfigError(path, None, None, f'line {exc.lineno} comes before '
                           'any [section]', 'start the file with a section '
                           'such as [app:main]')
    if isinstance(exc, configparser.ParsingError):
        lineno, line = exc.errors[0]
        try:  # configparser keeps the line's repr
            line = ast.literal_eval(line)
        except (ValueError, SyntaxError):
            pass
        return ConfigError(path, section_at(path, lineno), None,
                           f'line {lineno} is not "key = value": '
                           f'{line.strip()}', 'add the "=", or '
                           'indent it to continue the previous value, or '
                           'start it with # to make it a comment')
    return ConfigError(path, None, None, f'not a valid ini file: {exc}')


def section_at(path, lineno):
    """The name of the section that line ``lineno`` of the file is in."""
    section = None
    with open(path, encoding='utf-8') as handle:
        for number, line in enumerate(handle, 1):
            if number >= lineno:
                break
            match = re.match(r'\[([^\]]+)\]', line)
            if match:
                section = match.group(1).strip()
    return section


def section_items(parser, section):
    """The section's own ``(key, value)`` pairs, interpolated.

    ``[DEFAULT]`` entries (``here`` among them) belong to every section, so
    they are left out: they are not settings of this one.
    """
    defaults = parser.defaults()
    for key in parser.options(section):
        if key in defaults:
            continue
        yield key, expanded(parser, section, key)


def expanded(parser, section, key):
    """One value, ``%(here)s`` and its kind expanded; the error says which
    name is undefined, never the raw value (it may hold a password)."""
    try:
        return parser.get(section, key)
    except configparser.InterpolationMissingOptionError as exc:
        problem = f'"%({exc.reference})s" is not defined'
    except configparser.InterpolationSyntaxError:
        problem = 'a "%" that is not "%(name)s"'
    except configparser.Error:
        problem = 'it refers to itself, or too deeply'
    raise ConfigError(parser.path, section, key,
                      f'cannot expand the value: {problem}',
                      'only %(here)s and %(__file__)s are defined; write %% '
                      'for a percent sign') from None


# -- values --------------------------------------------------------------

def to_bool(path, section, key, value):
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError(path, section, key, f'"{value}" is not a boolean',
                      'write true or false')


def to_list(value):
    if value.startswith('['):
        parsed = json.loads(value)
        if not isinstance(parsed, list):
            raise ValueError('expected a JSON list')
        return parsed
    return [item for item in value.replace(',', ' ').split() if item]


def to_dict(value):
    parsed = json.loads(value)
    if not isinstance(parsed, dict):
        raise ValueError('expected a JSON object')
    return parsed


def to_literal(value):
    """A JSON value when the text is one (numbers, true, lists...), else text.

    Used where Celery or kombu declare no type: ``0.05`` must reach the
    transport as a float, a folder path as a string.
    """
    lowered = value.lower()
    if lowered in ('true', 'false'):
        return lowered == 'true'
    if lowered in ('none', 'null'):
        return None
    try:
        return json.loads(value)
    except ValueError:
        return value


# -- the PasteDeploy sections: app, server, logging ------------------------

#: PasteDeploy's entry point groups for what a ``use = egg:`` line names.
APP_GROUPS = ('paste.app_factory', 'paste.composite_factory',
              'paste.filter_app_factory')
SERVER_GROUPS = ('paste.server_runner', 'paste.server_factory')
#: Sections that may stand for the app named NAME.
APP_KINDS = ('app', 'pipeline', 'composite', 'filter-app')
#: Values that are templates of their own (logging's %(asctime)s...).
RAW_SECTIONS = ('formatter_',)


def check_paste_deploy(parser, app_name='main', server_name='main'):
    """What PasteDeploy, pserve and logging read before the app's own code
    runs, checked so that a mistake there is one line too: every value
    expands, the app section exists and its ``use`` names something
    installed, the server section (if any) is one waitress takes, and the
    logging sections hang together.  ``server_name=None`` skips the
    server."""
    for section in parser.sections():
        if not section.startswith(RAW_SECTIONS):
            dict(section_items(parser, section))
    check_app_section(parser, app_name)
    check_pshell(parser)
    if server_name and parser.has_section(f'server:{server_name}'):
        check_server_section(parser, f'server:{server_name}')
    check_logging(parser)


def check_app_section(parser, name):
    sections = [f'{kind}:{name}' for kind in APP_KINDS]
    found = [s for s in sections if parser.has_section(s)]
    if not found:
        known = [s for s in parser.sections()
                 if s.partition(':')[0] in APP_KINDS]
        raise ConfigError(parser.path, f'app:{name}', None,
                          'missing: there is no application to run',
                          suggest_section(known, f'app:{name}')
                          or f'add [app:{name}] with use = egg:PACKAGE')
    section = found[0]
    if section.startswith('app:'):
        check_use(parser, section, APP_GROUPS)


def check_pshell(parser):
    """``[pshell] setup``: pshell imports it; a typo was a traceback."""
    if not parser.has_option('pshell', 'setup'):
        return
    name = expanded(parser, 'pshell', 'setup').strip()
    module = name.partition(':')[0]
    parent = module.rpartition('.')[0] if ':' not in name else module
    # The parent, not the name: finding a.b.c imports the module a.b.
    if not (module_exists(parent) if parent else module_exists(module)):
        raise ConfigError(parser.path, 'pshell', 'setup', f'no module named '
                          f'"{module}"', 'write the dotted name of a '
                          'function, e.g. myapp.pshell.setup')


def suggest_section(known, wanted):
    match = closest(wanted, known)
    return None if match is None else \
        f'did you mean [{match}]? (rename it [{wanted}])'


def check_use(parser, section, groups):
    """``use = egg:DIST#NAME``, ``call:module:object`` or
    ``config:file``: what PasteDeploy loads exists."""
    items = dict(section_items(parser, section))
    direct = [key for key in items if key.startswith('paste.')]
    if 'use' not in items:
        if direct:
            return
        raise ConfigError(parser.path, section, 'use', 'missing',
                          'add "use = egg:PACKAGE" naming the package')
    use = items['use'].strip()
    scheme, _, target = use.partition(':')
    if scheme == 'egg':
        check_egg(parser.path, section, target, groups)
    elif scheme == 'call':
        module, _, _ = target.partition(':')
        if not module_exists(module):
            raise ConfigError(parser.path, section, 'use', f'no module '
                              f'named "{module}"', 'check the name')
    elif scheme == 'config':
        other = os.path.join(os.path.dirname(parser.path), target)
        if not os.path.isfile(target if os.path.isabs(target) else other):
            raise ConfigError(parser.path, section, 'use', f'no file '
                              f'"{target}"', 'check the path')
    else:
        raise ConfigError(parser.path, section, 'use',
                          f'"{use}" is not egg:, call: or config:',
                          'write e.g. use = egg:PACKAGE')


def check_egg(path, section, target, groups):
    dist_name, _, entry_name = target.partition('#')
    dist_name, entry_name = dist_name.strip(), entry_name.strip() or 'main'
    try:
        dist = metadata.distribution(dist_name)
    except (metadata.PackageNotFoundError, ValueError):
        candidates = {ep.dist.name for group in groups
                      for ep in metadata.entry_points(group=group)
                      if ep.dist is not None}
        raise ConfigError(path, section, 'use',
                          f'no installed package "{dist_name}"',
                          suggest(dist_name, candidates)
                          or 'install it, or correct the name') from None
    names = {ep.name for ep in dist.entry_points if ep.group in groups}
    if entry_name not in names:
        raise ConfigError(path, section, 'use',
                          f'{dist_name} has no entry point "{entry_name}" in '
                          f'{" or ".join(groups)}',
                          suggest(entry_name, names)
                          or f'{dist_name} is not something to use here')


def module_exists(name):
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


#: waitress's listen, one or more ``host:port`` (``*:6543``, ``[::1]:6543``).
LISTEN = re.compile(r'\A(?:\[[0-9A-Fa-f:.]+\]|[^\s:\[\]]*):(\d+)\Z')


def check_server_section(parser, section):
    """The server pserve runs; waitress's keys and values are checked."""
    check_use(parser, section, SERVER_GROUPS)
    items = dict(section_items(parser, section))
    if not items.get('use', '').strip().startswith('egg:waitress'):
        return
    from waitress.adjustments import Adjustments
    for key, value in items.items():
        if key == 'use':
            continue
        if key not in Adjustments._param_map:
            raise ConfigError(parser.path, section, key,
                              'not a waitress setting',
                              suggest(key, Adjustments._param_map)
                              or 'see waitress\'s "Arguments to '
                              'waitress.serve"')
        if key == 'listen':
            for address in value.split():
                match = LISTEN.match(address)
                if not match or not 0 <= int(match.group(1)) <= 65535:
                    raise ConfigError(parser.path, section, key,
                                      f'"{address}" is not host:port',
                                      'write e.g. listen = localhost:6543 '
                                      '(or *:6543 for every interface)')
            continue
        if key == 'port' and not (value.strip().isdigit()
                                  and int(value) <= 65535):
            raise ConfigError(parser.path, section, key,
                              f'"{value}" is not a port number',
                              'write a number from 0 to 65535')
        try:
            Adjustments._param_map[key](value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(parser.path, section, key,
                              f'"{value}" is not valid: {exc}') from None


def check_logging(parser):
    """What ``logging.config.fileConfig`` would trip on: a listed logger,
    handler or formatter without its section, a level that is not one,
    a handler class that does not exist."""
    if not parser.has_section('loggers'):
        return
    path = parser.path
    listed = {kind: keys_of(parser, f'{kind}s')
              for kind in ('logger', 'handler', 'formatter')}
    for kind, names in listed.items():
        for name in names:
            if not parser.has_section(f'{kind}_{name}'):
                raise ConfigError(path, f'{kind}s', 'keys', f'lists "{name}" '
                                  f'but there is no [{kind}_{name}] section',
                                  f'add the section or remove "{name}"')
    if 'root' not in listed['logger']:
        raise ConfigError(path, 'loggers', 'keys', 'root is not listed',
                          'logging needs a [logger_root] listed here')
    levels = [name for name in logging.getLevelNamesMapping()
              if name != 'NOTSET'] + ['NOTSET']
    for kind in ('logger', 'handler'):
        for name in listed[kind]:
            section = f'{kind}_{name}'
            items = dict(section_items(parser, section))
            level = items.get('level', 'NOTSET').strip()
            if level not in logging.getLevelNamesMapping():
                raise ConfigError(path, section, 'level',
                                  f'"{level}" is not a logging level',
                                  suggest(level, levels)
                                  or f'use one of {", ".join(levels)}')
            if kind == 'logger':
                used = [h.strip() for h in items.get('handlers', '').split(',')
                        if h.strip()]
                for handler in used:
                    if handler not in listed['handler']:
                        raise ConfigError(path, section, 'handlers',
                                          f'"{handler}" is not listed in '
                                          '[handlers]', suggest(
                                              handler, listed['handler']))
            else:
                check_handler(path, section, items, listed['formatter'])


def keys_of(parser, section):
    if not parser.has_section(section):
        return []
    value = expanded(parser, section, 'keys') \
        if parser.has_option(section, 'keys') else ''
    return [key.strip() for key in value.split(',') if key.strip()]


def check_handler(path, section, items, formatters):
    name = items.get('class', '').strip()
    if not name:
        raise ConfigError(path, section, 'class', 'missing',
                          'e.g. class = StreamHandler')
    if not handler_class_exists(name):
        raise ConfigError(path, section, 'class', f'no handler class "{name}"',
                          suggest(name, [n for n, v in vars(logging).items()
                                         if n.endswith('Handler')])
                          or 'e.g. class = StreamHandler')
    formatter = items.get('formatter', '').strip()
    if formatter and formatter not in formatters:
        raise ConfigError(path, section, 'formatter', f'"{formatter}" is not '
                          'listed in [formatters]', suggest(formatter,
                                                            formatters))


def handler_class_exists(name):
    """As fileConfig looks it up: a name in :mod:`logging` (or
    ``handlers.X``), else a dotted path."""
    import logging.handlers  # noqa: F401  (fileConfig's namespace has it)
    target = logging
    for part in name.split('.'):
        target = getattr(target, part, None)
        if target is None:
            break
    if target is not None:
        return True
    module, _, attribute = name.rpartition('.')
    if not module or not module_exists(module):
        return False
    return hasattr(importlib.import_module(module), attribute)
