"""Tasks that run inside the Pyramid application, like a view does.

Modelled on PyPI's Warehouse (``warehouse/tasks.py``) and pyramid-tasks:

* every run gets its own Pyramid request from the app's registry, with an
  explicit transaction manager (``request.tm``) and whatever request methods
  the app adds (``request.dbsession``).  The function receives that request
  as its first argument;
* the transaction commits when the function returns and aborts when it
  raises; transient database errors are retried with exponential backoff;
* its result is checked before that commit: a result that JSON cannot
  carry, or larger than ``max_result_bytes``, fails the job (and rolls its
  writes back) instead of failing later in the result backend;
* :class:`TaskSucceeded` is notified inside that transaction, so what a
  subscriber records of the success commits with the task's own writes;
* the request is closed after every run, so no connection stays checked out;
* a task sent while a transaction is open (in a view, or in another task)
  is sent only once that transaction commits, and never if it aborts;
* each step of its life is a Pyramid event (:mod:`.events`), which is how
  an application keeps a history of its jobs.
"""
import functools
import inspect
import json
import logging
import traceback

import celery
import transaction
from celery import states
from celery.exceptions import Ignore, Reject, Retry
from celery.result import AsyncResult
from celery.utils import uuid
from celery.utils.time import get_exponential_backoff_interval
from kombu.exceptions import EncodeError
from kombu.serialization import dumps
from pyramid.scripting import prepare
from pyramid.threadlocal import get_current_request

from .app import celery_app
from .delivery import check_nesting
from .events import (TaskEnqueued, TaskFailed, TaskProgress, TaskRetrying,
                     TaskRevoked, TaskSendFailed, TaskSent, TaskStarted,
                     TaskSucceeded, has_subscribers, notify_in_own_transaction)
from .origin import Origin
from .results import keeps_results
from .transient import transient_error_test

log = logging.getLogger(__name__)

class TaskResult(AsyncResult):
    """An AsyncResult that knows its task's name without asking the backend.

    Celery 5 dropped ``AsyncResult.task_name``, which seed 002's pshell
    session uses; the sender knows the name, so it is kept here.
    """

    def __init__(self, id, task_name=None, **kwargs):
        super().__init__(id, **kwargs)
        self._task_name = task_name

    @property
    def task_name(self):
        return self._task_name or self.name


def current_transaction():
    """The open transaction of the current Pyramid request, or None.

    Celery's ``delay()`` gets no request argument, so the request is found
    the way Warehouse does: through Pyramid's thread-local stack, on which
    pyramid_tm, ``pshell``/``bootstrap`` and :class:`PyramidTask` push theirs.
    """
    request = get_current_request()
    manager = getattr(request, 'tm', None) if request is not None else None
    if manager is None:
        return None
    if getattr(manager, 'explicit', False):
        try:
            return manager.get()
        except transaction.interfaces.NoTransaction:
            return None
    # An implicit manager would *start* a transaction on get(); peek instead.
    return getattr(manager, '_txn', None)


class PyramidTask(celery.Task):
    """Base class of the tasks made with :func:`task`."""

    #: Transient database errors retry after 1, 2, 4... seconds, jittered.
    #: ``max_retries`` (Celery's, default 3) is the limit; set it per task in
    #: the decorator, or for all tasks with ``task_annotations`` in the ini.
    retry_backoff = True
    retry_backoff_max = 60
    retry_jitter = True

    #: The largest result, as JSON, that a run may return; a larger one
    #: fails the job (``ResultTooLarge``).  Per task in the decorator, for
    #: all tasks with ``task_annotations = {"*": {"max_result_bytes": N}}``.
    max_result_bytes = 1024 * 1024

    #: The worker refuses a message it could not run (:mod:`.delivery`).
    Request = 'myapp.celery_integration.delivery:TaskRequest'

    #: May a run lost with its worker (process killed, machine gone) run
    #: again?  ``False`` for a task whose partial run must not be repeated:
    #: its job then fails, saying why (:class:`TaskLost`).
    rerun_if_lost = True

    def AsyncResult(self, task_id, **kwargs):  # noqa: N802  (Celery's name)
        return TaskResult(task_id, task_name=self.name, backend=self.backend,
                          app=self.app, **kwargs)

    @property
    def registry(self):
        return self.app.conf.get('PYRAMID_REGISTRY')

    def notify(self, event_class, task_id=None, **details):
        """Notify a lifecycle event in a transaction of its own."""
        return notify_in_own_transaction(
            self.registry, event_class, self.name,
            task_id or self.request.id, **details)

    # -- running --------------------------------------------------------

    def run_in_pyramid(self, function, args, kwargs):
        if self.request.called_directly:  # add(1, 2): a plain call, no job
            return self.call_in_transaction(function, args, kwargs)
        self.check_not_skipped(args, kwargs)
        try:
            return self.call_in_transaction(function, args, kwargs,
                                            succeed=True)
        except TaskCancelled:
            self.backend.mark_as_revoked(self.request.id, 'cancelled',
                                         request=self.request)
            self.notify(TaskRevoked, terminated=True)
            raise Ignore()
        except (Retry, Ignore, Reject):
            raise
        except Exception as exc:
            if self.is_transient(exc) and \
                    self.request.retries < (self.max_retries or 0):
                raise self.retry(exc=exc, countdown=self.backoff(exc))
            self.notify(TaskFailed, exc=exc,
                        traceback=traceback.format_exc())
            raise

    def retry(self, args=None, kwargs=None, exc=None, throw=True, eta=None,
              countdown=None, max_retries=None, **options):
        """Celery's retry, announced before the new attempt is sent (so a
        subscriber never sees the next attempt start before the retry)."""
        limit = self.max_retries if max_retries is None else max_retries
        if not self.request.called_directly and \
                (limit is None or self.request.retries < limit):
            self.notify(TaskRetrying, exc=exc,
                        retries=self.request.retries + 1)
        return super().retry(args, kwargs, exc, throw, eta, countdown,
                             max_retries, **options)

    def is_transient(self, exc):
        """Is ``exc`` worth a retry?  The app decides (:mod:`.transient`)."""
        return transient_error_test(self.registry)(exc)

    def check_not_skipped(self, args, kwargs):
        delivery = self.request.delivery_info or {}
        started = self.notify(
            TaskStarted, args=args, kwargs=kwargs,
            worker=self.request.hostname, retries=self.request.retries,
            redelivered=bool(delivery.get('redelivered')),
            eager=bool(self.request.is_eager))
        if started is not None and started.skipped:
            log.info('%s[%s]: not run: %s', self.name, self.request.id,
                     started.skipped)
            if started.earlier_success is not None:
                self.store_earlier_result(*started.earlier_success)
            raise Ignore()

    def store_earlier_result(self, result):
        """An earlier run succeeded, and its worker may have died before
        it stored the result: store it, unless the backend has one, so
        that ``AsyncResult.get()`` does not wait forever."""
        if self.ignore_result or self.request.ignore_result:
            return
        task_id = self.request.id
        if self.backend.get_state(task_id) not in states.READY_STATES:
            self.backend.mark_as_done(task_id, result, request=self.request)

    def call_in_transaction(self, function, args, kwargs, succeed=False):
        """Call ``function`` in the run's request and transaction; with
        ``succeed``, check its result and notify :class:`TaskSucceeded`
        before the commit."""
        env = self.open_environment()
        request = env['request']
        try:
            with request.tm:
                result = function(request, *args, **kwargs)
                if succeed:
                    self.check_result(result)
                    self.registry.notify(TaskSucceeded(
                        request, self.name, self.request.id, result=result,
                        result_kept=self.result_kept()))
                return result
        finally:
            env['closer']()

    def result_kept(self):
        """Will Celery store this run's result where it stays readable
        (see :class:`TaskSucceeded`)?"""
        return not (self.request.is_eager or self.ignore_result
                    or self.request.ignore_result) \
            and keeps_results(self.backend)

    def check_result(self, result):
        """Fail now, with the reason, on a result the backend and the job
        history could not store."""
        if self.serializer != 'json':
            return
        try:
            size = len(json.dumps(result, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise EncodeError(f'{self.name}: the result is not plain JSON: '
                              f'{exc}') from None
        limit = self.max_result_bytes
        if limit is not None and size > limit:
            raise ResultTooLarge(
                f'{self.name}: the result is {size} bytes of JSON, over '
                f'max_result_bytes={limit}: store large data elsewhere and '
                'return its key, or raise the limit for this task')

    def backoff(self, exc):
        countdown = get_exponential_backoff_interval(
            factor=int(self.retry_backoff), retries=self.request.retries,
            maximum=self.retry_backoff_max, full_jitter=self.retry_jitter)
        log.warning('%s[%s]: transient database error, retry %d of %s in '
                    '%ss: %s', self.name, self.request.id,
                    self.request.retries + 1, self.max_retries, countdown,
                    exc)
        return countdown

    def open_environment(self):
        registry = self.registry
        if registry is None:
            raise RuntimeError(
                f'{self.name}: the Pyramid application is not configured; '
                'start the worker with pceleryd INI (or --ini INI), and call '
                "config.configure_celery(global_config['__file__']) in main()")
        env = prepare(registry=registry)
        request = env['request']
        request.tm = transaction.TransactionManager(explicit=True)
        request.celery_task = self
        request.report_progress = self.report_progress
        return env

    def report_progress(self, current, total=None, message=''):
        """Record progress; raises :class:`TaskCancelled` if cancelled.

        Call it from the task as ``request.report_progress(3, 10, 'step 3')``
        at points where stopping is safe: cancelling a job (the jobs API)
        takes effect at the next call, on every broker.
        """
        if self.request.called_directly:
            return
        meta = {'current': current, 'total': total, 'message': message}
        try:
            self.update_state(state='PROGRESS', meta=meta)
        except Exception as exc:
            # Only the result backend's copy: the job's row (the event
            # below) is the record, so a backend outage must not fail the
            # job.  How long this waits is bounded by .timeouts.
            log.warning('%s[%s]: progress not stored in the result backend: '
                        '%s: %s', self.name, self.request.id,
                        type(exc).__name__, exc)
        event = self.notify(TaskProgress, **meta)
        if event is not None and event.cancelled:
            raise TaskCancelled(self.request.id)

    # -- sending --------------------------------------------------------

    def apply_async(self, args=None, kwargs=None, task_id=None, origin=None,
                    **options):
        """Send now, or when the caller's transaction commits (see module).

        ``origin`` says who asked (an :class:`~.origin.Origin`, or its
        text); by default the running task (``task:ID``) or ``shell``.
        """
        # A retry is sent while the failed run's transaction is still open;
        # it must go now, not wait for a commit that will never come.
        if 'retries' in options:
            return super().apply_async(args, kwargs, task_id=task_id,
                                       **options)
        # Fail in the caller, not in an after-commit hook nobody watches.
        self.check_call(args, kwargs)
        task_id = task_id or uuid()
        details = {'args': list(args or ()), 'kwargs': dict(kwargs or {}),
                   'options': options,
                   'origin': Origin.parse(origin) if origin
                   else default_origin()}
        txn = current_transaction()
        if txn is None:
            enqueued = self.notify(TaskEnqueued, task_id, **details)
            if enqueued is not None and enqueued.held:
                return self.AsyncResult(task_id)
            return self.publish(args, kwargs, task_id, **options)
        request = get_current_request()
        if has_subscribers(request.registry, TaskEnqueued):
            enqueued = TaskEnqueued(request, self.name, task_id, **details)
            request.registry.notify(enqueued)
            if enqueued.held:
                return self.AsyncResult(task_id)
        txn.addAfterCommitHook(self._publish_if_committed,
                               args=(args, kwargs, task_id), kws=options)
        return self.AsyncResult(task_id)

    def check_call(self, args, kwargs):
        if self.typing:
            self.__header__(*(args or ()), **(kwargs or {}))
        try:
            check_nesting([args, kwargs])
        except ValueError as exc:
            raise EncodeError(f'{self.name}: {exc}') from None
        if self.serializer != 'json':
            dumps((args or (), kwargs or {}), serializer=self.serializer)
            return
        # kombu's JSON would pass datetime, Decimal and bytes as tagged
        # objects ({"__type__": "decimal", ...}) that the task receives,
        # and the history and API show, as something else than was sent.
        try:
            json.dumps((args or (), kwargs or {}), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise EncodeError(
                f'{self.name}: the arguments must be plain JSON (strings, '
                f'numbers, booleans, null, lists, objects): {exc}; send a '
                'datetime or Decimal as a string') from None

    def publish(self, args, kwargs, task_id, announce=True, **options):
        """Hand the message to the broker now, and tell subscribers.

        Also the way to send again a job whose first send failed: it does
        not notify :class:`TaskEnqueued` a second time.  A caller that
        records the send itself (and may hold the job's row lock while it
        sends) passes ``announce=False``: no :class:`TaskSent` then.
        """
        try:
            result = super().apply_async(args, kwargs, task_id=task_id,
                                         **options)
        except Exception as exc:
            self.notify(TaskSendFailed, task_id, exc=exc)
            raise
        if announce:
            self.notify(TaskSent, task_id)
        return result

    def _publish_if_committed(self, committed, args, kwargs, task_id,
                              **options):
        if not committed:
            log.debug('%s[%s]: not sent, the transaction aborted',
                      self.name, task_id)
            return
        try:
            self.publish(args, kwargs, task_id, **options)
        except Exception as exc:
            log.warning('%s[%s]: could not be sent after commit: %s',
                        self.name, task_id, exc)


class TaskCancelled(Exception):
    """Raised by ``report_progress`` when the job was cancelled."""


class ResultTooLarge(Exception):
    """A run returned more than its task's ``max_result_bytes``."""


def default_origin():
    # celery.current_task is a proxy; it proxies None outside a task.
    running = getattr(celery.current_task, 'request', None)
    if running is not None and running.id and not running.called_directly:
        return Origin.task(running.id)
    return Origin.shell()


def task(function=None, **options):
    """Declare a task that runs with a Pyramid request: ``f(request, ...)``.

    Accepts Celery's task options (``name``, ``max_retries``, ``queue``...)::

        @task
        def add(request, x, y):
            return x + y

        add.delay(5, 10)   # the worker calls add(request, 5, 10)
    """
    if function is None:
        return functools.partial(task, **options)

    @functools.wraps(function)
    def run(self, *args, **kwargs):
        return self.run_in_pyramid(function, args, kwargs)

    # Celery checks call arguments against the run method's signature; show
    # it the function's own, with ``self`` where ``request`` was.
    parameters = list(inspect.signature(function).parameters.values())
    if not parameters or parameters[0].name != 'request':
        raise TypeError(f'{function.__qualname__}: a task receives the '
                        'Pyramid request as its first parameter, "request"')
    run.__signature__ = inspect.Signature(
        [inspect.Parameter('self', inspect.Parameter.POSITIONAL_ONLY)]
        + parameters[1:])
    options.setdefault('base', PyramidTask)
    return celery_app.task(bind=True, **options)(run)
