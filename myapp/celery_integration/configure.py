"""Configure the Celery app from the Pyramid app's ini, in every process.

The web app, ``pshell``, the worker and beat all run the Pyramid app's
``main()``, which calls ``config.configure_celery(global_config['__file__'])``
(pyramid_celery's directive, with the same name and call).  For the worker
and beat, the ``--ini`` option makes Celery bootstrap that app first.
"""
import logging
import os
import threading

import pyramid_celery
from celery import signals
from pyramid.paster import bootstrap, setup_logging

from .beatlock import BeatAlreadyRunning, hold_beat_lock
from .compat import celery_app
from .events import TaskRevoked, WorkerReady, notify_in_own_transaction
from .schedules import check_beat_schedule
from .settings import ConfigError, load_celery_settings
from .sqlite import tune_sqlite_connections
from .task import PyramidTask

log = logging.getLogger(__name__)

#: The ini file this process was configured from.
_configured = {'ini': None}


class StartupError(SystemExit):
    """Stops pserve, pshell, the worker or beat with one line, no traceback."""

    def __init__(self, message):
        super().__init__(f'error: {message}')


def configure_celery(config, ini_path):
    """Directive: read Celery's settings from ``ini_path`` and apply them."""
    ini_path = os.path.abspath(ini_path)
    try:
        settings = load_celery_settings(ini_path, config.get_settings())
    except ConfigError as exc:
        raise StartupError(str(exc)) from None
    apply_settings(settings)
    celery_app.main = config.registry.package_name  # its name in banners
    celery_app.conf.PYRAMID_REGISTRY = config.registry
    config.registry.settings['celery.ini_file'] = ini_path
    _configured['ini'] = ini_path
    config.action(('celery', 'beat_schedule'), check_schedule,
                  args=(ini_path,), order=1)


def check_schedule(ini_path):
    try:
        check_beat_schedule(ini_path, celery_app)
    except ConfigError as exc:
        raise StartupError(str(exc)) from None
    # Runs sent by beat say which periodic job sent them.
    for name, entry in (celery_app.conf.beat_schedule or {}).items():
        if isinstance(celery_app.tasks[entry['task']], PyramidTask):
            entry.setdefault('options', {}).setdefault('origin',
                                                       f'beat:{name}')


def apply_settings(settings):
    if settings.pop('use_celeryconfig', False):
        celery_app.config_from_object('celeryconfig', force=True)
    else:
        celery_app.config_from_object(settings, force=True)
    forget_connections(celery_app)
    prepare_local_storage(celery_app.conf)
    if celery_app.conf.worker_hijack_root_logger:
        signals.setup_logging.disconnect(dispatch_uid=__name__)
    else:
        signals.setup_logging.connect(logging_from_ini, weak=False,
                                      dispatch_uid=__name__)


def forget_connections(app):
    """Drop what the app built from earlier settings.

    Celery caches its connection pool, producer pool (inside ``app.amqp``,
    with the queue names), time zone and per-thread result backend; one
    process configured twice (a test run, an app factory called again) must
    not keep the first broker or zone.
    """
    app._pool = None  # not closed: a holder may still be using it
    for cached in ('amqp', 'control', 'events', 'timezone'):
        app.__dict__.pop(cached, None)
    app._local = threading.local()


def prepare_local_storage(conf):
    """Create the folders that the embedded (server-less) setup writes to."""
    tune_sqlite_connections()
    folders = [os.path.dirname(conf.beat_schedule_filename)]
    if (conf.broker_url or '').startswith('filesystem:'):
        options = conf.broker_transport_options or {}
        folders += [options.get(key) for key in (
            'data_folder_in', 'data_folder_out', 'processed_folder')]
    backend = conf.result_backend or ''
    if backend.startswith('db+sqlite:///'):
        folders.append(os.path.dirname(backend[len('db+sqlite:///'):]))
    for folder in filter(None, folders):
        os.makedirs(folder, exist_ok=True)


def logging_from_ini(**kwargs):
    """Celery's setup_logging signal: use the ini's [loggers], as pserve."""
    if _configured['ini']:
        setup_logging(_configured['ini'])


# -- worker and beat start-up --------------------------------------------

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
    if _configured['ini'] != os.path.abspath(ini):
        raise StartupError(
            f'{ini}: the application did not configure Celery; call '
            "config.configure_celery(global_config['__file__']) in main()")
    record_environment(env['app'], env['root'], None, env['registry'], None,
                       ini)


def record_environment(app, root, request, registry, closer, ini_location):
    """Stands in for ``pyramid_celery.setup_app``.

    ``celery -A pyramid_celery.celery_app worker --ini INI`` still runs
    pyramid_celery's own handler; by then the app's main() has configured
    Celery through :func:`configure_celery`, and pyramid_celery's second,
    string-only reading of the ini would undo that.  Keep its conf keys.
    """
    celery_app.conf.update(PYRAMID_APP=app, PYRAMID_ROOT=root,
                           PYRAMID_REQUEST=request, PYRAMID_REGISTRY=registry,
                           PYRAMID_CLOSER=closer)


def one_beat_per_ini(**kwargs):
    """Beat (standalone or embedded in a worker) takes the ini's lock."""
    if not _configured['ini']:
        return
    try:
        hold_beat_lock(_configured['ini'])
    except BeatAlreadyRunning as exc:
        log.error('%s', exc)
        raise StartupError(str(exc)) from None


def announce_worker_ready(sender=None, **kwargs):
    notify_in_own_transaction(celery_app.conf.get('PYRAMID_REGISTRY'),
                              WorkerReady, getattr(sender, 'hostname', None))


def announce_revoked(request=None, terminated=False, expired=False,
                     **kwargs):
    """Celery's task_revoked, in the worker's main process."""
    task = getattr(request, 'task', None)
    notify_in_own_transaction(celery_app.conf.get('PYRAMID_REGISTRY'),
                              TaskRevoked, getattr(task, 'name', None),
                              request.id, terminated=terminated,
                              expired=expired)


def install_signal_handlers():
    signals.user_preload_options.disconnect(pyramid_celery.on_preload_parsed)
    signals.user_preload_options.connect(on_preload_parsed, weak=False,
                                         dispatch_uid=__name__)
    signals.beat_init.connect(one_beat_per_ini, weak=False,
                              dispatch_uid=__name__)
    signals.beat_embedded_init.connect(one_beat_per_ini, weak=False,
                                       dispatch_uid=__name__)
    signals.worker_ready.connect(announce_worker_ready, weak=False,
                                 dispatch_uid=__name__)
    signals.task_revoked.connect(announce_revoked, weak=False,
                                 dispatch_uid=__name__)
    pyramid_celery.setup_app = record_environment

