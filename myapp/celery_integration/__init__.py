"""Celery inside Pyramid: one ini, tasks that run like views.

Independent of myapp: any Pyramid app can use it::

    def main(global_config, **settings):
        with Configurator(settings=settings) as config:
            config.include('myapp.celery_integration')
            config.configure_celery(global_config['__file__'])
            ...

and declare tasks with :func:`task`.  Start workers with ``pceleryd INI``
(``celery -A myapp.celery_integration worker --ini INI``) and the
scheduler with ``pcelerybeat INI``.

Importing this package sets nothing up.  The errors and events below cost
nothing to import, so an application's models and scripts may use them;
the names that need Celery's application (``task``, ``celery_app``...) are
loaded when first used, and the Celery signal handlers are connected by
``configure_celery``.
"""
import importlib

from .errors import ConfigError, StartupError
from .events import (PoolProcessStopping, TaskEnqueued, TaskFailed,
                     TaskLost, TaskProgress, TaskRetrying, TaskRevoked,
                     TaskSendFailed, TaskSent, TaskStarted, TaskSucceeded,
                     WorkerReady, WorkerStopping)
from .origin import Origin

#: Names loaded on first use (PEP 562), and the module each comes from.
LAZY_NAMES = {
    'celery_app': '.app',
    'task': '.pyramid_task',
    'PyramidTask': '.pyramid_task',
    'TaskResult': '.pyramid_task',
    'TaskCancelled': '.pyramid_task',
    'ResultTooLarge': '.pyramid_task',
    'is_transient_error': '.transient',
}

__all__ = [
    'ConfigError', 'StartupError', 'Origin', 'includeme',
    'TaskEnqueued', 'TaskSent', 'TaskSendFailed', 'TaskStarted',
    'TaskProgress', 'TaskRetrying', 'TaskSucceeded', 'TaskFailed',
    'TaskLost', 'TaskRevoked', 'WorkerReady', 'WorkerStopping',
    'PoolProcessStopping', *LAZY_NAMES,
]


def __getattr__(name):
    if name not in LAZY_NAMES:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    return getattr(importlib.import_module(LAZY_NAMES[name], __name__), name)


def __dir__():
    return sorted(set(globals()) | set(LAZY_NAMES))


def includeme(config):
    """The ``configure_celery``, ``set_default_beat_scheduler`` and
    ``set_transient_error_test`` directives."""
    # Imported here, not above: they load Celery's application.
    from .configure import configure_celery, set_default_beat_scheduler
    from .transient import set_transient_error_test

    config.add_directive('configure_celery', configure_celery)
    config.add_directive('set_default_beat_scheduler',
                         set_default_beat_scheduler)
    config.add_directive('set_transient_error_test', set_transient_error_test)
