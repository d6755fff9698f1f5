"""Every job is recorded, however it was sent: subscribers to the task
lifecycle events (:mod:`myapp.celery_integration.events`) keep its row.

``TaskEnqueued`` arrives in the sender's transaction, so a view's job row
commits with the view's own writes, or not at all; the other events each
arrive in a short transaction of their own.
"""
import logging

from ..celery_integration import (Origin, TaskEnqueued, TaskFailed,
                                  TaskProgress, TaskRetrying, TaskRevoked,
                                  TaskSendFailed, TaskSent, TaskStarted,
                                  TaskSucceeded, WorkerReady)
from . import lifecycle
from .tasks import send_unsent

log = logging.getLogger(__name__)


def on_enqueued(event):
    lifecycle.enqueue(event.request.dbsession, event.task_id,
                      event.task_name, event.args, event.kwargs,
                      event.options, event.origin)


def on_sent(event):
    lifecycle.mark_sent(event.request.dbsession, event.task_id)


def on_send_failed(event):
    log.warning('job %s (%s) not sent, it stays in the outbox: %s: %s',
                event.task_id, event.task_name, type(event.exc).__name__,
                event.exc)


def on_started(event):
    # Jobs run in-process by Task.apply() are not a worker's: not recorded.
    unrecorded = None if event.eager else {
        'task_name': event.task_name, 'args': event.args,
        'kwargs': event.kwargs}
    reason = lifecycle.start(event.request.dbsession, event.task_id,
                             event.worker, event.retries, event.redelivered,
                             unrecorded)
    if reason:
        event.skip(reason)


def on_progress(event):
    if lifecycle.record_progress(event.request.dbsession, event.task_id,
                                 event.current, event.total, event.message):
        event.cancel()


def on_retrying(event):
    lifecycle.retrying(event.request.dbsession, event.task_id, event.exc,
                       event.retries)


def on_succeeded(event):
    lifecycle.succeed(event.request.dbsession, event.task_id, event.result)


def on_failed(event):
    lifecycle.fail(event.request.dbsession, event.task_id, event.exc,
                   event.traceback)


def on_revoked(event):
    lifecycle.revoked(event.request.dbsession, event.task_id)


def on_worker_ready(event):
    """Send what a broker outage left unsent, now that a worker listens."""
    send_unsent.apply_async(origin=Origin.worker(event.hostname))


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
    WorkerReady: on_worker_ready,
}


def includeme(config):
    for event_class, subscriber in SUBSCRIBERS.items():
        config.add_subscriber(subscriber, event_class)
