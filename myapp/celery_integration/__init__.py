"""Celery inside Pyramid: one ini, tasks that run like views.

Independent of myapp: any Pyramid app can use it::

    def main(global_config, **settings):
        with Configurator(settings=settings) as config:
            config.include('myapp.celery_integration')
            config.configure_celery(global_config['__file__'])
            ...

and declare tasks with :func:`task`.  Start workers with ``pceleryd INI``
and the scheduler with ``pcelerybeat INI``.
"""
from .compat import celery_app
from .configure import StartupError, configure_celery, install_signal_handlers
from .settings import ConfigError
from .events import (TaskEnqueued, TaskFailed, TaskProgress, TaskRetrying,
                     TaskRevoked, TaskSendFailed, TaskSent, TaskStarted,
                     TaskSucceeded, WorkerReady)
from .task import (PyramidTask, TaskCancelled, TaskResult,
                   is_transient_error, task)

__all__ = [
    'celery_app', 'task', 'PyramidTask', 'TaskResult', 'TaskCancelled',
    'ConfigError', 'StartupError', 'is_transient_error', 'includeme',
    'TaskEnqueued', 'TaskSent', 'TaskSendFailed', 'TaskStarted',
    'TaskProgress', 'TaskRetrying', 'TaskSucceeded', 'TaskFailed',
    'TaskRevoked', 'WorkerReady',
]

# Replace pyramid_celery's start-up handler before Celery parses --ini.
install_signal_handlers()


def includeme(config):
    config.add_directive('configure_celery', configure_celery)
