"""Reading the PasteDeploy ini file: sections, keys and plain values.

What the values *mean* is for :mod:`.settings` (Celery's settings) and
:mod:`.schedules` (periodic jobs); both read the file through this module,
so that every error names the file, section and key the same way.
"""
import configparser
import json
import os

from .errors import ConfigError

TRUE_WORDS = {'true', 'yes', 'on', '1'}
FALSE_WORDS = {'false', 'no', 'off', '0'}


def var_directory(ini_path):
    """The folder beside the ini that holds beat's and the broker's state."""
    return os.path.join(os.path.dirname(os.path.abspath(ini_path)), 'var')


def read_ini(path):
    """Parse ``path`` the way PasteDeploy does (``%(here)s``, keys keep case)."""
    path = os.path.abspath(path)
    parser = configparser.ConfigParser(
        defaults={'here': os.path.dirname(path), '__file__': path})
    parser.optionxform = str
    try:
        with open(path, encoding='utf-8') as handle:
            parser.read_file(handle)
    except OSError as exc:
        raise ConfigError(path, None, None, f'cannot read it ({exc.strerror})',
                          'pass the path of an existing ini file') from None
    except configparser.Error as exc:
        raise ConfigError(path, None, None, f'not a valid ini file: {exc}') \
            from None
    parser.path = path  # so that errors can name the file
    return parser


def section_items(parser, section):
    """The section's own ``(key, value)`` pairs, interpolated.

    ``[DEFAULT]`` entries (``here`` among them) belong to every section, so
    they are left out: they are not settings of this one.
    """
    defaults = parser.defaults()
    for key in parser.options(section):
        if key in defaults:
            continue
        try:
            yield key, parser.get(section, key)
        except configparser.Error as exc:
            raise ConfigError(parser.path, section, key,
                              f'cannot expand the value: {exc.message}',
                              'only %(here)s and %(__file__)s are defined')\
                from None


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
