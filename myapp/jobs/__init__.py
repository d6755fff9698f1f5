"""Jobs over HTTP, and the history of every job however it was sent.

``config.include('myapp.jobs')`` after ``myapp.celery_integration`` (and
pyramid_tm and pyramid_retry, which ``myapp.models`` includes):

* records each job in the ``jobs`` table from the task lifecycle events
  (:mod:`.recording`), which also makes that table the outbox of jobs the
  broker has not accepted yet (:mod:`.outbox`);
* adds the ``config.expose_task(task)`` directive: only exposed tasks can
  be started over HTTP (:mod:`.exposure`);
* starts and revokes jobs in one place (:mod:`.actions`), for the JSON API
  (:mod:`.api`) and the job pages (:mod:`.pages`); routes are in
  :mod:`myapp.routes`;
* declares the housekeeping tasks ``myapp.jobs.tasks.send_unsent`` and
  ``myapp.jobs.tasks.purge_history`` (:mod:`.tasks`).
"""
from .exposure import expose_task


def includeme(config):
    from . import tasks  # noqa: F401  (declares the housekeeping tasks)

    config.add_directive('expose_task', expose_task)
    config.include('.recording')
    config.scan('.api')
    config.scan('.pages')
    config.scan('.errors')
