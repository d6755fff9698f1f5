"""Pyramid events for each step of a task's life.

Subscribe with ``config.add_subscriber(handler, TaskStarted)``, as to any
Pyramid event.  Every event carries a ``request`` with ``request.tm`` and
the app's request methods (``request.dbsession``), so a subscriber records
what happened with the same machinery views use:

* :class:`TaskEnqueued` is notified in the *sender's* transaction when there
  is one (a view's job row commits with the view's own writes), else in a
  transaction of its own;
* :class:`TaskSucceeded` is notified in the task's own transaction, so
  what a subscriber records of the success commits with the task's writes,
  or not at all;
* every other event is notified in a short transaction of its own that
  commits at once, so what it records is visible while the task runs and
  survives the task's own rollback.  That request and its transaction are
  opened when a subscriber first reads ``event.request``: one that records
  elsewhere (a buffer written in batches) costs no transaction at all.
  ``event.own_transaction`` tells the two kinds of notification apart.

Every event also has ``registry``.  Nothing is opened when no subscriber
listens for an event.
"""
import transaction
from pyramid.scripting import prepare
from zope.interface import implementedBy


class TaskEvent:
    #: Notified in a transaction of its own (opened on first use of
    #: ``request``), not in the sender's or the task's.
    own_transaction = False

    def __init__(self, request, task_name, task_id, **details):
        self._request = request
        self.registry = getattr(request, 'registry', None)
        self.task_name = task_name
        self.task_id = task_id
        for name, value in details.items():
            setattr(self, name, value)

    @property
    def request(self):
        if self._request is None and self.own_transaction:
            self._request = self._own.open()
        return self._request


class TaskEnqueued(TaskEvent):
    """About to be sent: ``args``, ``kwargs``, ``options``, and ``origin``,
    an :class:`~.origin.Origin` (who asked: a request, a parent job...).

    A subscriber that keeps the job to send it later itself (an ETA too far
    off for a broker to hold safely) calls :meth:`hold`: it is not sent.
    """

    held = False

    def hold(self):
        self.held = True


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
    #: ``(result,)`` when an earlier run of the job succeeded.
    earlier_success = None

    def skip(self, reason, **earlier):
        """Do not run it, for ``reason``; ``result=...`` when an earlier
        run succeeded with it (a copy of a message whose run committed,
        then lost its worker before Celery stored the result): whoever
        waits on the task gets that result."""
        self.skipped = reason
        if 'result' in earlier:
            self.earlier_success = (earlier['result'],)


class TaskProgress(TaskEvent):
    """The task reported ``current`` of ``total`` with ``message``.  A
    subscriber calls :meth:`cancel` to ask the task to stop."""

    cancelled = False

    def cancel(self):
        self.cancelled = True


class TaskRetrying(TaskEvent):
    """It failed with ``exc`` and will run again (``retries`` so far)."""


class TaskSucceeded(TaskEvent):
    """It returned ``result``; notified in its transaction, just before
    the commit (a failing commit makes it a failure after all).

    ``result_kept`` is true when Celery stores the result, right after
    the commit, in a backend that keeps it (not ``rpc://``, not
    ``ignore_result``, not run in-process): whoever finds the run lost
    later can read its outcome there (:func:`.results.stored_success`), so
    a subscriber may record the success off the run's path."""

    result_kept = False


class TaskFailed(TaskEvent):
    """It raised ``exc`` (``traceback`` as text) and will not run again;
    also when the worker killed it at its hard time limit
    (``TimeLimitExceeded``, no traceback), and when a worker refused its
    message (it cannot decode or run it, or has no such task):
    ``refused_by`` then names that worker."""

    refused_by = None


class TaskLost(TaskEvent):
    """The process running it died (``exc``: Celery's ``WorkerLostError``),
    seen by the worker that ran it; ``rerun`` is the task's
    ``rerun_if_lost``.  (A whole worker or machine that dies tells no one:
    a job history keeps a lease on each run for that.)"""


class TaskRevoked(TaskEvent):
    """It was revoked or cancelled: ``terminated`` says if it was running."""


class WorkerEvent:
    """Something happened to a worker (``request`` as above), in its main
    process: ``worker`` is what Celery's signal gives (the consumer when it
    is ready, its ``pool``, ``controller``, ``task_consumer``...; the
    worker controller when it stops)."""

    own_transaction = False

    def __init__(self, request, hostname, worker=None):
        self._request = request
        self.registry = getattr(request, 'registry', None)
        self.hostname = hostname
        self.worker = worker

    request = TaskEvent.request


class WorkerReady(WorkerEvent):
    """A worker has started and is taking tasks."""


class WorkerStopping(WorkerEvent):
    """A worker is shutting down (a warm or cold stop, not a crash)."""


class PoolProcessStopping(WorkerEvent):
    """A worker's pool process is exiting (the worker stops, or the process
    ran its ``--max-tasks-per-child``): in that process, the last moment
    to write what it kept in memory.  ``hostname`` is None (Celery's
    signal does not say), ``worker`` the process's pid."""


def has_subscribers(registry, event_class):
    return bool(registry.adapters.subscriptions(
        (implementedBy(event_class),), None))


def notify_in_own_transaction(registry, event_class, *args, **details):
    """Notify a new ``event_class`` in a request and transaction of its own,
    opened when a subscriber asks for ``event.request``.

    Returns the event (or None when nobody listens) so the caller can read
    what subscribers decided (``skipped``, ``cancelled``).
    """
    if registry is None or not has_subscribers(registry, event_class):
        return None
    event = event_class(None, *args, **details)
    event.registry, event.own_transaction = registry, True
    event._own = own = OwnTransaction(registry)
    try:
        registry.notify(event)
        own.commit()
    finally:
        own.close()
    return event


class OwnTransaction:
    """A request of ``registry`` and its transaction, opened on demand."""

    def __init__(self, registry):
        self.registry = registry
        self.env = None

    def open(self):
        self.env = prepare(registry=self.registry)
        request = self.env['request']
        request.tm = transaction.TransactionManager(explicit=True)
        request.tm.begin()
        return request

    def commit(self):
        if self.env is not None:
            self.env['request'].tm.commit()

    def close(self):
        if self.env is None:
            return
        manager = self.env['request'].tm
        try:
            manager.get()
        except transaction.interfaces.NoTransaction:
            pass  # committed
        else:
            manager.abort()  # a subscriber raised
        self.env['closer']()
