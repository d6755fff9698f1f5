"""Leases: a running job is known alive only while its worker says so.

A worker that dies (SIGKILL, out of memory, a machine lost) tells no one,
and its broker may hold the message for an hour (Redis's visibility
timeout) or, on the embedded broker, have lost it.  So each run holds a
lease on its job's row (``lease_expires_at``, set when the run claims the
job, :func:`.lifecycle.start`):

* the process running it extends the lease three times per lease, from a
  thread (:class:`LeaseKeeper`); ``jobs.lease_seconds`` in ``[app:main]``
  sets the lease (30 s by default): shorter finds dead runs sooner, and
  costs one ``UPDATE`` per running process each third of it;
* a run whose lease has expired is lost: :func:`recover_lost_runs` (the
  sweeper, in every worker and in the ``send_unsent`` task) sends its job
  again through the outbox, or fails it when its task says it must not run
  twice (``rerun_if_lost = False``) or it was lost too often; unless the
  result backend holds its success (a run whose SUCCESS the journal had
  not written yet, :mod:`.journal`), which it then records;
* while the lease is alive, a copy of the message (redelivered by the
  broker, or sent again) does not start a second run.

A pool process that dies under a live worker is seen at once (Celery's
``WorkerLostError``, :class:`~myapp.celery_integration.TaskLost`), without
waiting for the lease.
"""
import logging
import os
import threading
import weakref

from billiard.exceptions import WorkerLostError

from ..celery_integration import celery_app
from ..celery_integration.results import stored_success
from . import lifecycle, outbox
from .durations import configure_seconds

log = logging.getLogger(__name__)

LEASE_SETTING = 'jobs.lease_seconds'
#: Below this, a busy database or a pause of the process (a long garbage
#: collection) could make a live run look lost.
MIN_LEASE_SECONDS = 3


def configure_lease(config):
    """Read ``jobs.lease_seconds`` into the registry (see :func:`lease`)."""
    configure_seconds(config, LEASE_SETTING, lifecycle.LEASE,
                      MIN_LEASE_SECONDS)


def lease(registry):
    """How long a run holds its job without saying it is alive."""
    return registry.get(LEASE_SETTING, lifecycle.LEASE)


def rerun_if_lost(task_name):
    """Does the task allow a lost run to run again (default: yes)?"""
    return getattr(celery_app.tasks.get(task_name), 'rerun_if_lost', True)


def recover_lost_runs(dbsession, limit=outbox.BATCH_SIZE):
    """Send again (or fail) the jobs whose run's lease expired; return how
    many were sent again."""
    lost = []
    lookup = SuccessLookup()
    for job_id, task_name, worker in lifecycle.expired_leases(dbsession,
                                                              limit):
        success = lookup.success_of(job_id)
        if success is not None:
            # It ran to the end; its process died before the journal
            # wrote its SUCCESS.
            lifecycle.succeed(dbsession, job_id, success[0])
            log.info('job %s (%s): its run on %s succeeded (its result is '
                     'in the result backend); recorded', job_id, task_name,
                     worker)
            continue
        reason = WorkerLostError(
            f'its run on {worker} stopped extending its lease (the worker '
            'or its machine died)')
        if lifecycle.lose(dbsession, job_id, reason,
                          rerun=rerun_if_lost(task_name)):
            log.warning('job %s (%s): its run on %s was lost, sending it '
                        'again', job_id, task_name, worker)
            lost.append(job_id)
        else:
            log.warning('job %s (%s): its run on %s was lost: %s', job_id,
                        task_name, worker, reason)
    return send_again(dbsession, lost)


class SuccessLookup:
    """Asks Celery's result backend whether the lost runs of one sweep
    succeeded."""

    def __init__(self):
        self.answers = True

    def success_of(self, job_id):
        """``(result,)`` if the backend holds the job's success
        (:mod:`.journal`), else None; None too when the backend cannot be
        asked (the run is then lost, as without it), and for the rest of
        the sweep after it failed once: each question would wait for its
        timeout, the sweep's transaction open."""
        if not self.answers:
            return None
        try:
            return stored_success(celery_app.backend, job_id)
        except Exception as exc:
            self.answers = False
            log.warning('job %s: the result backend could not be asked '
                        'whether its run succeeded (not asked again in this '
                        'sweep): %s: %s', job_id, type(exc).__name__, exc)
            return None


def send_again(dbsession, job_ids):
    """Send now the lost jobs that :func:`.lifecycle.lose` put back in
    the outbox (the sweeper would, later)."""
    if not job_ids:
        return 0
    return outbox.send_unsent(dbsession, older_than_seconds=0,
                              limit=len(job_ids), ids=job_ids)


class LeaseKeeper:
    """Extends the leases of the runs of this process, from a thread.

    One per process (:func:`keeper`): a pool process's runs are kept alive
    by that process, so a pool process that dies stops extending them.
    """

    def __init__(self, session_factory, lease):
        self.session_factory = session_factory
        self.pid = os.getpid()
        self.lease = lease
        self.interval = lease.total_seconds() / 3
        self.held = {}  # job id: worker name
        self.lock = threading.Lock()
        self.wakeup = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True,
                                       name='myapp-lease-keeper')
        self.thread.start()

    def hold(self, job_id, worker):
        with self.lock:
            self.held[job_id] = worker

    def release(self, job_id):
        with self.lock:
            self.held.pop(job_id, None)

    def run(self):
        while not self.wakeup.wait(self.interval):
            try:
                self.extend()
            except Exception:  # the database is away: try again later
                log.exception('could not extend the leases of %s',
                              sorted(self.held))

    def extend(self):
        with self.lock:
            held = dict(self.held)
        for worker in set(held.values()):
            ids = [job_id for job_id, name in held.items() if name == worker]
            with self.session_factory() as dbsession, dbsession.begin():
                still = lifecycle.extend_leases(dbsession, ids, worker,
                                                self.lease)
            with self.lock:
                for job_id in set(ids) - still:  # it ended elsewhere
                    self.held.pop(job_id, None)


KEEPER = 'myapp.jobs.lease_keeper'
_keepers = weakref.WeakSet()  # every LeaseKeeper of this process


def keeper(registry):
    """The app's :class:`LeaseKeeper` in this process (a forked child makes
    its own)."""
    current = registry.get(KEEPER)
    if current is None or current.pid != os.getpid():
        current = registry[KEEPER] = LeaseKeeper(
            registry['dbsession_factory'], lease(registry))
        _keepers.add(current)
    return current


def release(job_id):
    """This process's run of ``job_id`` ended: stop extending its lease."""
    for current in list(_keepers):
        if current.pid == os.getpid():
            current.release(job_id)
