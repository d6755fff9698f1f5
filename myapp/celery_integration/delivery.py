"""What a worker accepts from the broker: no message crashes it.

A message whose arguments nest deeper than Python can handle (a JSON list
600 levels deep decodes, then overflows the stack when the worker pickles it
for its pool process) made the worker exit, and come back to the same
message, forever.  :class:`TaskRequest`, the worker's request class for
:class:`~.pyramid_task.PyramidTask` (Celery's ``Task.Request`` extension
point), refuses such a message, and one whose body does not decode, as an
invalid task: Celery rejects it without requeueing, logs why, and sends
``task_rejected``, on which the integration announces the job's
:class:`~.events.TaskFailed` with the reason (see :mod:`.configure`).  The
worker carries on with the next message.  A body Celery cannot decode
before it makes a request (any task's) is reported the same way by
:class:`Consumer`, the worker's consumer (Celery's ``worker_consumer``
setting; Celery itself only logs it).

Senders refuse the same arguments before they leave
(``PyramidTask.check_call``, with :func:`check_nesting`).
"""
from celery import signals
from celery.exceptions import InvalidTaskError
from celery.worker.consumer import Consumer as CeleryConsumer
from celery.worker.request import Request
from kombu.exceptions import DecodeError

#: The deepest nesting of lists and objects a job's arguments (or its HTTP
#: request body) may have: far below Python's recursion limit (1000), far
#: above what real arguments need.
MAX_NESTING = 64


def nesting_depth(value, limit=None):
    """How deep lists, tuples and dicts nest in ``value`` (a scalar is 0),
    without recursion; stops counting past ``limit``."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, (list, tuple)):
            children = value
        else:
            continue
        deepest = max(deepest, depth)
        if limit is not None and deepest > limit:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def check_nesting(value, what='the arguments'):
    """Raise ``ValueError`` if ``value`` nests deeper than
    :data:`MAX_NESTING`."""
    if nesting_depth(value, MAX_NESTING) > MAX_NESTING:
        raise ValueError(f'{what} nest deeper than {MAX_NESTING} levels of '
                         'lists and objects')


class TaskRequest(Request):
    """Refuses, as an invalid task, a message it could not run."""

    def __init__(self, message, *args, **kwargs):
        try:
            super().__init__(message, *args, **kwargs)
        except (DecodeError, RecursionError) as exc:
            raise InvalidTaskError(
                f'the message body does not decode: {exc}') from None
        try:
            check_nesting([self.args, self.kwargs])
        except ValueError as exc:
            raise InvalidTaskError(str(exc)) from None


class Consumer(CeleryConsumer):
    """Celery's consumer; a message it cannot decode also sends
    ``task_rejected``, as its other refusals do, so its job fails."""

    def on_decode_error(self, message, exc):
        super().on_decode_error(message, exc)  # logs it and acknowledges
        signals.task_rejected.send(
            sender=self, message=message,
            exc=InvalidTaskError(f'the message body does not decode: {exc}'))
