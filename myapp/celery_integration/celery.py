"""The module ``celery -A`` names: the Celery app, booted from ``--ini``.

::

    celery -A myapp.celery_integration worker --ini development.ini
    celery -A myapp.celery_integration beat --ini development.ini

(``pceleryd INI`` and ``pcelerybeat INI`` run exactly these.)  Celery finds
this module from the package name, takes :data:`app`, parses the ``--ini``
option that pyramid_celery declares, and calls the handler below before
any worker or beat code runs.  It is the one handler Celery needs before the
application exists, so it is connected here, when Celery imports this
module, and nowhere else.
"""
import os

from celery import signals
from pyramid.paster import bootstrap

from .app import celery_app, pyramid_celery
from .configure import configured_ini, record_environment
from .errors import StartupError

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


def on_preload_parsed(options, **kwargs):
    """Boot the Pyramid app named by ``--ini`` before the worker or beat.

    Replaces pyramid_celery's handler, which prints a traceback and lets the
    worker go on with default settings when the app fails (its issue 66).
    """
    ini = options.get('ini')
    if not ini:
        raise StartupError('pass the ini file of the application: '
                           '--ini development.ini')
    ini_vars = parse_ini_vars(options.get('ini_var'))
    if not os.path.isfile(ini):
        raise StartupError(f'{ini}: no such file')
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


signals.user_preload_options.disconnect(pyramid_celery.on_preload_parsed)
signals.user_preload_options.connect(on_preload_parsed, weak=False,
                                     dispatch_uid=__name__)
