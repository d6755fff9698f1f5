"""Periodic jobs kept in the app database, changed while beat runs.

``config.include('myapp.schedules')`` after ``myapp.celery_integration``:

* the ``periodic_jobs`` table (:mod:`myapp.models.schedule`) holds every
  periodic job, the ini's ``[celerybeat:NAME]`` sections synchronised
  into it (:mod:`.store`);
* beat reads it through :class:`.scheduler.DatabaseScheduler`, Celery's
  scheduler extension point, made the app's ``beat_scheduler`` unless the
  ini names another; several beats may run, one sends (:mod:`.lease`);
* ``/api/schedules`` and ``/schedules`` show and change them (:mod:`.api`,
  :mod:`.pages`); routes are in :mod:`myapp.routes`.
"""
DATABASE_SCHEDULER = 'myapp.schedules.scheduler:DatabaseScheduler'


def includeme(config):
    config.set_default_beat_scheduler(DATABASE_SCHEDULER)
    config.scan('.api')
    config.scan('.pages')
