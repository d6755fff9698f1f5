"""``pserve INI`` and ``pshell INI``: Pyramid's, with the ini checked first.

Pyramid's commands read the ini (logging, the server, the app section)
before myapp's ``main()`` runs, so a mistake there, a duplicate key, a
logging level that is not one or a misspelt ``use = egg:``, was a
traceback.  These check the whole file as ``pceleryd`` does
(:func:`myapp.celery_integration.settings.check_ini`), answer a mistake
with one line naming the file, section and key and a non-zero exit, and
otherwise hand over to Pyramid's command unchanged.

They are installed under Pyramid's names (``setup.py``), so ``pserve`` in
the virtualenv is this one; ``python -m pyramid.scripts.pserve`` is still
Pyramid's own.
"""
import sys

from plaster import parse_uri
from pyramid.scripts import pserve as pyramid_pserve
from pyramid.scripts import pshell as pyramid_pshell
from pyramid.scripts.common import parse_vars

from myapp.celery_integration.errors import ConfigError


def pserve(argv=None):
    argv = sys.argv if argv is None else argv
    args = pyramid_pserve.PServeCommand.parser.parse_args(argv[1:])
    server = None if args.server else (args.server_name or 'main')
    check(args, server)
    return pyramid_pserve.main(argv)


def pshell(argv=None):
    argv = sys.argv if argv is None else argv
    args = pyramid_pshell.PShellCommand.parser.parse_args(argv[1:])
    check(args, 'main')  # the server too: one ini, checked the same way
    return pyramid_pshell.main(argv)


def check(args, server_name):
    """Exit with one line if the ini of ``args`` is wrong; let Pyramid
    answer what is not a plain ini file (no argument, another loader)."""
    from myapp.celery_integration.settings import check_ini

    if not args.config_uri:
        return
    uri = parse_uri(args.config_uri)
    if uri.scheme != 'file+ini':
        return
    app_name = getattr(args, 'app_name', None) or uri.fragment or 'main'
    try:
        variables = parse_vars(args.config_vars)
        check_ini(uri.path, app_name, server_name, variables)
    except ConfigError as exc:
        sys.exit(f'error: {exc}')
    except ValueError as exc:  # a config var that is not key=value
        sys.exit(f'error: {exc}')
