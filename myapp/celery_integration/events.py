"""Pyramid events for each step of a task's life.

Subscribe with ``config.add_subscriber(handler, TaskStarted)``, as to any
Pyramid event.  Every event carries a ``request`` with ``request.tm`` and
the app's request methods (``request.dbsession``), so a subscriber records
what happened with the same machinery views use:

* :class:`TaskEnqueued` is notified in the *sender's* transaction when there
  is one (a view's job row commits with the view's own writes), else in a
  transaction of its own;
* every other event is notified in a short transaction of its own that
  commits at once, so what it records is visible while the task runs and
  survives the task's own rollback.

Nothing is opened when no subscriber listens for an event.
"""
import transaction
from pyramid.scripting import prepare
from zope.interface import implementedBy


class TaskEvent:
    def __init__(self, request, task_name, task_id, **details):
        self.request = request
        self.task_name = task_name
        self.task_id = task_id
        for name, value in details.items():
            setattr(self, name, value)


class TaskEnqueued(TaskEvent):
    """About to be sent: ``args``, ``kwargs``, ``options``, and ``origin``,
    an :class:`~.origin.Origin` (who asked: a request, a parent job...)."""


class TaskSent(TaskEvent):
    """The broker accepted the message."""


class TaskSendFailed(TaskEvent):
    """The broker could not be reached: ``exc``.  Send it later."""


class TaskStarted(TaskEvent):
    """A worker is about to run it: ``args``, ``kwargs``, ``worker``,
    ``retries``, ``redelivered``, and ``eager`` (run in-process by
    ``Task.apply()``, not by a worker).  A subscriber calls :meth:`skip` to
    stop the run (a duplicate delivery, a job cancelled while queued)."""

    skipped = None

    def skip(self, reason):
        self.skipped = reason


class TaskProgress(TaskEvent):
    """The task reported ``current`` of ``total`` with ``message``.  A
    subscriber calls :meth:`cancel` to ask the task to stop."""

    cancelled = False

    def cancel(self):
        self.cancelled = True


class TaskRetrying(TaskEvent):
    """It failed with ``exc`` and will run again (``retries`` so far)."""


class TaskSucceeded(TaskEvent):
    """It returned ``result`` and its transaction committed."""


class TaskFailed(TaskEvent):
    """It raised ``exc`` (``traceback`` as text) and will not run again."""


class TaskRevoked(TaskEvent):
    """It was revoked or cancelled: ``terminated`` says if it was running."""


class WorkerReady:
    """A worker has started and is taking tasks (``request`` as above)."""

    def __init__(self, request, hostname):
        self.request = request
        self.hostname = hostname


def has_subscribers(registry, event_class):
    return bool(registry.adapters.subscriptions(
        (implementedBy(event_class),), None))


def notify_in_own_transaction(registry, event_class, *args, **details):
    """Notify a new ``event_class`` in a request and transaction of its own.

    Returns the event (or None when nobody listens) so the caller can read
    what subscribers decided (``skipped``, ``cancelled``).
    """
    if registry is None or not has_subscribers(registry, event_class):
        return None
    env = prepare(registry=registry)
    request = env['request']
    request.tm = transaction.TransactionManager(explicit=True)
    try:
        with request.tm:
            event = event_class(request, *args, **details)
            registry.notify(event)
        return event
    finally:
        env['closer']()
