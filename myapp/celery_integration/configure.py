"""Configure the Celery app from the Pyramid app's ini, in every process.

The web app, ``pshell``, the worker and beat all run the Pyramid app's
``main()``, which calls ``config.configure_celery(global_config['__file__'])``
(pyramid_celery's directive, with the same name and call).  For the worker
and beat, the ``--ini`` option makes Celery bootstrap that app first
(:mod:`.celery`).

Nothing here runs at import: the directive applies the settings and
connects the integration's Celery signal handlers, once per process however
often it is called.
"""
import importlib
import logging
import os
import threading

from billiard.exceptions import WorkerLostError
from celery import signals
from celery.exceptions import NotRegistered, TimeLimitExceeded
from pyramid.paster import setup_logging

from .app import celery_app, pyramid_celery
from .beatlock import BeatAlreadyRunning, hold_beat_lock, needs_machine_lock
from .errors import ConfigError, StartupError
from .events import (PoolProcessStopping, TaskFailed, TaskLost, TaskRevoked,
                     WorkerReady, WorkerStopping, notify_in_own_transaction)
from .origin import Origin
from .kombu_fixes import guard_redis_channel_close
from .schedules import check_beat_schedule, check_routes
from .settings import load_celery_settings
from .pyramid_task import PyramidTask
from .results import store_times_in_utc
from .timeouts import apply_timeout_defaults

log = logging.getLogger(__name__)

#: pyramid_celery's module of settings, with ``use_celeryconfig = true``.
CELERYCONFIG = 'celeryconfig'

#: Celery's own ``beat_scheduler``.
CELERY_DEFAULT_SCHEDULER = 'celery.beat:PersistentScheduler'

#: The ini file this process was configured from.
_configured = {'ini': None}


def configure_celery(config, ini_path):
    """Directive: read Celery's settings from ``ini_path`` and apply them."""
    ini_path = os.path.abspath(ini_path)
    try:
        settings = load_celery_settings(ini_path, config.get_settings(),
                                        require_broker=True)
    except ConfigError as exc:
        raise StartupError(str(exc)) from None
    apply_timeout_defaults(settings, config.get_settings(), ini_path)
    apply_settings(settings, ini_path)
    # Named in the ini (or its celeryconfig module), even as the default.
    _configured['scheduler_named'] = 'beat_scheduler' in settings or \
        celery_app.conf.beat_scheduler != CELERY_DEFAULT_SCHEDULER
    guard_redis_channel_close()  # a kombu defect exits workers (see module)
    connect_signal_handlers()
    celery_app.main = config.registry.package_name  # its name in banners
    celery_app.conf.PYRAMID_REGISTRY = config.registry
    config.registry.settings['celery.ini_file'] = ini_path
    _configured['ini'] = ini_path
    config.action(('celery', 'beat_schedule'), check_schedule,
                  args=(ini_path,), order=1)


def set_default_beat_scheduler(config, scheduler):
    """Directive: beat uses ``scheduler`` (``module:Class``) unless the ini
    names one (``beat_scheduler`` in ``[celery]``).  Call it after
    ``configure_celery``."""
    if not _configured.get('scheduler_named'):
        celery_app.conf.beat_scheduler = scheduler


def configured_ini():
    """The ini file this process configured Celery from, or None."""
    return _configured['ini']


def check_schedule(ini_path):
    try:
        check_beat_schedule(ini_path, celery_app)
        check_routes(ini_path, celery_app)
    except ConfigError as exc:
        raise StartupError(str(exc)) from None
    # Runs sent by beat say which periodic job sent them.
    for name, entry in (celery_app.conf.beat_schedule or {}).items():
        if isinstance(celery_app.tasks[entry['task']], PyramidTask):
            entry.setdefault('options', {}).setdefault(
                'origin', str(Origin.beat(name)))


def apply_settings(settings, ini_path):
    if settings.pop('use_celeryconfig', False):
        celery_app.config_from_object(celeryconfig_module(ini_path),
                                      force=True)
    else:
        celery_app.config_from_object(settings, force=True)
    forget_connections(celery_app)
    prepare_local_storage(celery_app.conf)
    if (celery_app.conf.result_backend or '').startswith('db+'):
        store_times_in_utc()
    if celery_app.conf.worker_hijack_root_logger:
        signals.setup_logging.disconnect(dispatch_uid=__name__)
    else:
        signals.setup_logging.connect(logging_from_ini, weak=False,
                                      dispatch_uid=__name__)


def celeryconfig_module(ini_path):
    """pyramid_celery's ``use_celeryconfig``: the settings are in the module
    ``celeryconfig``.  Imported now, so that its absence stops start-up
    with one line instead of failing at the first use of a setting."""
    try:
        return importlib.import_module(CELERYCONFIG)
    except ImportError as exc:
        raise StartupError(str(ConfigError(
            ini_path, 'celery', 'use_celeryconfig',
            f'cannot import the module {CELERYCONFIG}: {exc}',
            f'put {CELERYCONFIG}.py on the Python path, or remove the key '
            'to read the settings from the ini'))) from None


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


# -- worker and beat ------------------------------------------------------

def record_environment(app, root, request, registry, closer, ini_location):
    """Stands in for ``pyramid_celery.setup_app``.

    ``celery -A pyramid_celery.celery_app worker --ini INI`` runs
    pyramid_celery's own ``--ini`` handler, which boots the app (whose
    main() configures Celery through :func:`configure_celery`) and then
    calls ``setup_app``, whose second, string-only reading of the ini would
    undo that.  Keep its conf keys instead.
    """
    celery_app.conf.update(PYRAMID_APP=app, PYRAMID_ROOT=root,
                           PYRAMID_REQUEST=request, PYRAMID_REGISTRY=registry,
                           PYRAMID_CLOSER=closer)


def one_beat_per_ini(sender=None, **kwargs):
    """Beat (standalone or embedded in a worker) takes the ini's lock,
    unless its scheduler coordinates beats itself (see beatlock)."""
    if not _configured['ini']:
        return
    scheduler = getattr(sender, 'scheduler', None)
    if scheduler is not None and \
            not needs_machine_lock(type(scheduler), _configured['ini']):
        return
    try:
        hold_beat_lock(_configured['ini'])
    except BeatAlreadyRunning as exc:
        log.error('%s', exc)
        raise StartupError(str(exc)) from None


def announce_worker_ready(sender=None, **kwargs):
    """Celery's worker_ready: ``sender`` is the worker's consumer."""
    notify_in_own_transaction(celery_app.conf.get('PYRAMID_REGISTRY'),
                              WorkerReady, getattr(sender, 'hostname', None),
                              worker=sender)


def announce_worker_stopping(sender=None, **kwargs):
    """Celery's worker_shutdown (not worker_shutting_down, which is sent
    from the signal handler): ``sender`` is the worker's controller."""
    notify_in_own_transaction(celery_app.conf.get('PYRAMID_REGISTRY'),
                              WorkerStopping,
                              getattr(sender, 'hostname', None),
                              worker=sender)


def announce_pool_process_stopping(pid=None, **kwargs):
    """Celery's worker_process_shutdown, in the pool process that exits
    (by ``os._exit``: no ``atexit`` handler runs there)."""
    notify_in_own_transaction(celery_app.conf.get('PYRAMID_REGISTRY'),
                              PoolProcessStopping, None, worker=pid)


def announce_revoked(request=None, terminated=False, expired=False,
                     **kwargs):
    """Celery's task_revoked, in the worker's main process."""
    task = getattr(request, 'task', None)
    notify_in_own_transaction(celery_app.conf.get('PYRAMID_REGISTRY'),
                              TaskRevoked, getattr(task, 'name', None),
                              request.id, terminated=terminated,
                              expired=expired)


def announce_lost_or_timed_out(sender=None, task_id=None, exception=None,
                               **kwargs):
    """Celery's task_failure, for the two ends that only the worker's main
    process sees (a run's own failures are announced by the run): its pool
    process died, or the hard time limit killed it."""
    if not isinstance(sender, PyramidTask):
        return
    if isinstance(exception, WorkerLostError):
        sender.notify(TaskLost, task_id, exc=exception,
                      rerun=sender.rerun_if_lost)
    elif isinstance(exception, TimeLimitExceeded):
        sender.notify(TaskFailed, task_id, exc=exception, traceback=None)


def announce_refused(sender=None, message=None, exc=None, **kwargs):
    """Celery's task_rejected and task_unknown: the worker refused a
    message (it cannot decode or run it, or has no such task)."""
    headers = getattr(message, 'headers', None) or {}
    task_id, task_name = headers.get('id'), headers.get('task')
    if not task_id or exc is None:
        return
    if isinstance(exc, KeyError):  # task_unknown: no task of that name
        exc = NotRegistered(task_name)
    notify_in_own_transaction(celery_app.conf.get('PYRAMID_REGISTRY'),
                              TaskFailed, task_name, task_id, exc=exc,
                              traceback=None,
                              refused_by=getattr(sender, 'hostname', '?'))


SIGNAL_HANDLERS = (
    (signals.beat_init, one_beat_per_ini),
    (signals.worker_ready, announce_worker_ready),
    (signals.worker_shutdown, announce_worker_stopping),
    (signals.worker_process_shutdown, announce_pool_process_stopping),
    (signals.task_revoked, announce_revoked),
    (signals.task_failure, announce_lost_or_timed_out),
    (signals.task_rejected, announce_refused),
    (signals.task_unknown, announce_refused),
)


def connect_signal_handlers():
    """Connect the handlers above; connecting again changes nothing."""
    for signal, handler in SIGNAL_HANDLERS:
        signal.connect(handler, weak=False, dispatch_uid=__name__)
    pyramid_celery.setup_app = record_environment
