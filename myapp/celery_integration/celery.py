"""The module ``celery -A`` names: the Celery app, booted from ``--ini``.

::

    celery -A myapp.celery_integration worker --ini development.ini
    celery -A myapp.celery_integration beat --ini development.ini

(``pceleryd INI`` and ``pcelerybeat INI`` run exactly these.)  Celery finds
this module from the package name and takes :data:`app`.  Importing it
declares the ``--ini`` and ``--ini-var`` options (pyramid_celery's, with
the same names) so that they boot the Pyramid app *while the command line
is parsed*, before any other option: Celery reads the defaults of options
such as beat's ``--schedule`` from the app's settings as it parses them,
and they must be the ini's, not Celery's (which would put
``celerybeat-schedule`` in the current directory).  It is the one thing
Celery needs before the application exists, so it is done here, when
Celery imports this module, and nowhere else.
"""
import os

from celery import signals
from click import Option
from pyramid.paster import bootstrap

from .app import celery_app, pyramid_celery
from .configure import configured_ini, record_environment
from .errors import ConfigError, StartupError
from .settings import check_ini

#: What ``celery -A myapp.celery_integration`` runs.
app = celery_app


def parse_ini_vars(text):
    """``--ini-var a=1,b=2``, as pyramid_celery accepts it."""
    options = {}
    for pair in filter(None, (text or '').split(',')):
        key, sep, value = pair.partition('=')
        if not sep or not key.strip():
            raise StartupError(f'--ini-var "{pair}" is not key=value')
        options[key.strip()] = value
    return options


def boot(ini, ini_var=None):
    """Boot the Pyramid app named by ``--ini`` (once), which configures
    Celery from the same file.

    Unlike pyramid_celery's handler, which prints a traceback and lets the
    worker go on with default settings when the app fails (its issue 66),
    any failure stops the command with one line.
    """
    if not ini:
        raise StartupError('pass the ini file of the application: '
                           '--ini development.ini')
    if configured_ini() == os.path.abspath(ini):
        return
    ini_vars = parse_ini_vars(ini_var)
    if not os.path.isfile(ini):
        raise StartupError(f'{ini}: no such file')
    try:
        check_ini(ini, variables=ini_vars)
    except ConfigError as exc:
        raise StartupError(str(exc)) from None
    try:
        env = bootstrap(ini, options=ini_vars)
    except SystemExit:
        raise
    except Exception as exc:
        raise StartupError(f'{ini}: the application failed to start: '
                           f'{type(exc).__name__}: {exc}') from None
    env['closer']()  # the worker needs the app and registry, not a request
    if configured_ini() != os.path.abspath(ini):
        raise StartupError(
            f'{ini}: the application did not configure Celery; call '
            "config.configure_celery(global_config['__file__']) in main()")
    record_environment(env['app'], env['root'], None, env['registry'], None,
                       ini)


def read_ini_option(ctx, param, value):
    """Click callback of ``--ini`` and ``--ini-var``: both are eager, so
    they are read before every other option, given or not; the second of
    the two to be read boots the app."""
    read = ctx.meta.setdefault(__name__, {})
    read[param.name] = value
    if {'ini', 'ini_var'} <= set(read):
        boot(read['ini'], read['ini_var'])
    return value


INI_OPTIONS = (
    Option(('--ini', '-i'), is_eager=True,
           callback=read_ini_option,
           help='The PasteDeploy ini file of the Pyramid application.'),
    Option(('--ini-var',), is_eager=True,
           callback=read_ini_option,
           help='Comma separated key=value pairs to pass to the ini.'),
)


def declare_ini_options(app):
    """Replace pyramid_celery's ``--ini`` options with the eager ones."""
    preload = app.user_options['preload']
    for option in list(preload):
        if option.name in ('ini', 'ini_var'):
            preload.discard(option)
    preload.update(INI_OPTIONS)


declare_ini_options(celery_app)
# pyramid_celery's own handler would boot the app a second time.
signals.user_preload_options.disconnect(pyramid_celery.on_preload_parsed)
