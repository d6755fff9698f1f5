"""Workers and queues: which workers run, what waits, what is stuck.

``config.include('myapp.workers')`` after ``myapp.jobs``:

* each worker writes its own row in the ``workers`` table while it runs
  (:mod:`.heartbeat`), so every web process sees the same workers, and a
  worker that died is shown as gone (:mod:`.roster`);
* queue depths are asked of the broker (:mod:`.queues`);
* ``GET /api/workers``, ``GET /api/queues`` and ``GET /api/jobs/stuck``
  (:mod:`.api`) and the ``/workers`` page (:mod:`.pages`); routes are in
  :mod:`myapp.routes`.

``workers.heartbeat_seconds`` in ``[app:main]`` (2 by default) sets how
often a worker writes its row; one silent for five of them is gone.
"""
from ..celery_integration import WorkerReady, WorkerStopping
from ..jobs.durations import configure_seconds
from . import heartbeat


def includeme(config):
    configure_seconds(config, heartbeat.HEARTBEAT_SETTING,
                      heartbeat.HEARTBEAT, heartbeat.MIN_HEARTBEAT_SECONDS)
    config.add_subscriber(heartbeat.on_worker_ready, WorkerReady)
    config.add_subscriber(heartbeat.on_worker_stopping, WorkerStopping)
    config.scan('.api')
    config.scan('.pages')
