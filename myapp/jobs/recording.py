"""Every job is recorded, however it was sent: subscribers to the task
lifecycle events (:mod:`myapp.celery_integration.events`) keep its row.

``TaskEnqueued`` arrives in the sender's transaction, so a view's job row
commits with the view's own writes, or not at all; ``TaskSucceeded`` in the
task's, so its SUCCESS commits with the task's writes; the other events
each arrive in a short transaction of their own.  The row of a job sent
outside a transaction, every ``sent_at``, and the SUCCESS of a run that
wrote nothing (when the result backend keeps its result) are written in
batches by the journal (:mod:`.journal`): a send costs no transaction, and
such a run only its claim.

A run holds a lease on its row while it runs (:mod:`.leases`); each worker
sweeps lost runs and the outbox (:mod:`.sweeper`).
"""
import logging

from ..celery_integration import (Origin, PoolProcessStopping, TaskEnqueued,
                                  TaskFailed, TaskLost, TaskProgress,
                                  TaskRetrying, TaskRevoked, TaskSendFailed,
                                  TaskSent, TaskStarted, TaskSucceeded,
                                  WorkerReady)
from ..models.types import utcnow
from . import leases, lifecycle, lost_messages, outbox
from .autocommit import autocommit
from .journal import flush as flush_journal
from .journal import journal
from .sweeper import start_sweeper

log = logging.getLogger(__name__)


def on_enqueued(event):
    values = lifecycle.enqueued(event.task_id, event.task_name, event.args,
                                event.kwargs, event.options, event.origin)
    held = outbox.hold_if_far(values)
    if held:
        event.hold()  # in the outbox: written now, below
    if event.own_transaction and not held:
        journal(event.registry).record(values)
    else:
        request = event.request
        lifecycle.enqueue(request.dbsession, request.tm.get(), values)


def recorded_job(request, job_id, insert_now=False, **columns):
    """The row of a job sent in the request's transaction, with
    ``columns`` changed, to show (see :func:`.lifecycle.enqueued_job`)."""
    return lifecycle.enqueued_job(request.dbsession, request.tm.get(), job_id,
                                  insert_now, **columns)


def on_sent(event):
    journal(event.registry).sent(event.task_id, utcnow())


def on_send_failed(event):
    # Its row must be in the outbox before the sender hears of it.
    flush_journal()
    log.warning('job %s (%s) not sent, it stays in the outbox: %s: %s',
                event.task_id, event.task_name, type(event.exc).__name__,
                event.exc)


def on_started(event):
    if event.eager:
        # Run in-process by Task.apply(): this process may have sent the
        # job a moment ago; its row must be there to claim.
        flush_journal()
    # Jobs run in-process by Task.apply() are not a worker's: not recorded.
    unrecorded = None if event.eager else {
        'task_name': event.task_name, 'args': event.args,
        'kwargs': event.kwargs}
    with autocommit(event.registry) as dbsession:
        reason = lifecycle.start(dbsession, event.task_id, event.worker,
                                 event.retries, unrecorded,
                                 leases.lease(event.registry))
    if reason:
        event.skip(reason, **earlier_success(event.registry, event.task_id))
    elif not event.eager:
        leases.keeper(event.registry).hold(event.task_id, event.worker)


def earlier_success(registry, job_id):
    """``{'result': ...}`` if the job succeeded already, else ``{}``."""
    with autocommit(registry) as dbsession:
        ended = lifecycle.succeeded_with(dbsession, job_id)
    return {} if ended is None else {'result': ended[0]}


def release_lease(event):
    leases.release(event.task_id)


def on_progress(event):
    with autocommit(event.registry) as dbsession:
        cancelled = lifecycle.record_progress(
            dbsession, event.task_id, event.current, event.total,
            event.message)
    if cancelled:
        event.cancel()


def on_retrying(event):
    release_lease(event)
    lifecycle.retrying(event.request.dbsession, event.task_id, event.exc,
                       event.retries)


def on_succeeded(event):
    release_lease(event)
    dbsession = task_session(event.request)
    if dbsession is not None:  # commits with the task's own writes
        lifecycle.succeed(dbsession, event.task_id, event.result)
        return
    # Nothing to commit with: once the run commits, the journal writes it
    # with others, where the result backend keeps the result to recover
    # it from; else one statement of its own.
    hook = journal_success if event.result_kept else record_success
    event.request.tm.get().addAfterCommitHook(
        hook, args=(event.registry, event.task_id, event.result))


def journal_success(committed, registry, job_id, result):
    if committed:
        journal(registry).succeeded(job_id, result, utcnow())


def task_session(request):
    """The run's session, if its task used it (``request.dbsession`` is
    reified: in the request's ``__dict__`` once used); else None."""
    dbsession = request.__dict__.get('dbsession')
    return dbsession if dbsession is not None and \
        dbsession.in_transaction() else None


def record_success(committed, registry, job_id, result):
    if not committed:
        return  # the run failed after all; its failure is recorded
    try:
        with autocommit(registry) as dbsession:
            lifecycle.succeed(dbsession, job_id, result)
    except Exception:
        # After the commit, nothing can fail the run any more: the job
        # stays running until its lease expires, then runs again.
        log.exception('job %s: its success could not be recorded', job_id)


def on_failed(event):
    release_lease(event)
    refused_by = getattr(event, 'refused_by', None)
    unrecorded = None if refused_by is None else {
        'task_name': event.task_name or '?',
        'origin': Origin.worker(refused_by)}
    lifecycle.fail(event.request.dbsession, event.task_id, event.exc,
                   event.traceback, unrecorded)


def on_revoked(event):
    release_lease(event)
    lifecycle.revoked(event.request.dbsession, event.task_id)


def on_lost(event):
    """Its pool process died: send it again now (or fail it)."""
    dbsession = event.request.dbsession
    if lifecycle.lose(dbsession, event.task_id, event.exc, event.rerun,
                      lease_expired=False):
        leases.send_again(dbsession, [event.task_id])


def on_pool_process_stopping(event):
    """Write what the journal holds before the process exits."""
    flush_journal()


def on_worker_ready(event):
    """Sweep now (what a broker outage left unsent, runs lost while no
    worker ran), and every 10 s while this worker runs."""
    start_sweeper(event.request.registry)


SUBSCRIBERS = {
    TaskEnqueued: on_enqueued,
    TaskSent: on_sent,
    TaskSendFailed: on_send_failed,
    TaskStarted: on_started,
    TaskProgress: on_progress,
    TaskRetrying: on_retrying,
    TaskSucceeded: on_succeeded,
    TaskFailed: on_failed,
    TaskRevoked: on_revoked,
    TaskLost: on_lost,
    WorkerReady: on_worker_ready,
    PoolProcessStopping: on_pool_process_stopping,
}


def includeme(config):
    leases.configure_lease(config)
    lost_messages.configure(config)
    for event_class, subscriber in SUBSCRIBERS.items():
        config.add_subscriber(subscriber, event_class)
