"""Which tasks may be started over HTTP, and with which arguments.

A task is not startable over HTTP just because it exists: it must be
exposed, by name, where the app is configured::

    config.expose_task('myapp.tasks.add')      # or the task itself

Arguments are checked against the task function's signature (without its
``request``) and against its annotations where JSON can tell (``int``,
``float``, ``str``, ``bool``, ``list``, ``dict``, unions and ``Optional``
of those), before anything is recorded or queued.
"""
import inspect
import types
import typing

from pyramid.exceptions import ConfigurationError

from ..celery_integration import PyramidTask
from .values import jsonable

EXPOSED_TASKS = 'myapp.jobs.exposed_tasks'

#: What each JSON-checkable annotation accepts.  ``bool`` is an ``int`` in
#: Python, never in JSON; an integer is a fine ``float``.
JSON_CHECKS = {
    int: lambda value: isinstance(value, int) and not isinstance(value, bool),
    float: lambda value: isinstance(value, (int, float))
    and not isinstance(value, bool),
    str: lambda value: isinstance(value, str),
    bool: lambda value: isinstance(value, bool),
    list: lambda value: isinstance(value, list),
    dict: lambda value: isinstance(value, dict),
    type(None): lambda value: value is None,
}
#: Annotations written as text (``from __future__ import annotations``).
NAMED_TYPES = {t.__name__: t for t in JSON_CHECKS}
#: ``Union[X, Y]``/``Optional[X]``, and ``X | Y`` (Python 3.10+).
UNIONS = (typing.Union, getattr(types, 'UnionType', typing.Union))
JSON_NAMES = {bool: 'boolean', int: 'integer', float: 'number',
              str: 'string', list: 'array', dict: 'object',
              type(None): 'null'}


class InvalidArguments(Exception):
    def __init__(self, message, detail):
        super().__init__(message)
        self.detail = detail


class ExposedTask:
    """A task that may be started over HTTP, with its call signature."""

    def __init__(self, task):
        self.task = task
        self.name = task.name
        # What callers pass: the function's parameters after ``request``.
        # (@task gives run() the signature ``(self, ...)``, and Celery binds
        # run() to the task, which drops that ``self``.)
        self.signature = inspect.signature(task.run)

    def check_arguments(self, args, kwargs):
        """Raise :class:`InvalidArguments` unless the call fits."""
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidArguments(
                f'the arguments do not fit {self.name}{self.signature}',
                str(exc)) from None
        wrong = {}
        for name, value in bound.arguments.items():
            parameter = self.signature.parameters[name]
            for each in values_of(parameter, value):
                if not accepts(parameter.annotation, each):
                    wrong[name] = (f'expected {annotation_text(parameter)}'
                                   f', got {json_type(each)}')
        if wrong:
            raise InvalidArguments(
                f'arguments of the wrong type for {self.name}', wrong)

    def describe(self):
        """The task as GET /api/tasks shows it."""
        doc = inspect.getdoc(self.task.run) or ''
        return {
            'name': self.name,
            'description': doc.split('\n\n')[0].replace('\n', ' '),
            'parameters': [describe_parameter(parameter) for parameter in
                           self.signature.parameters.values()],
        }


def values_of(parameter, value):
    if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
        return value
    if parameter.kind is inspect.Parameter.VAR_KEYWORD:
        return value.values()
    return [value]


def accepts(annotation, value):
    """Does the JSON ``value`` fit ``annotation``?  Yes if JSON can't tell."""
    if isinstance(annotation, str):
        annotation = NAMED_TYPES.get(annotation.strip(), annotation)
    origin = typing.get_origin(annotation)
    if origin in UNIONS:
        return any(accepts(member, value)
                   for member in typing.get_args(annotation))
    check = JSON_CHECKS.get(origin or annotation)
    return check is None or check(value)


def json_type(value):
    return JSON_NAMES.get(type(value), type(value).__name__)


def annotation_text(parameter):
    annotation = parameter.annotation
    if annotation is inspect.Parameter.empty:
        return None
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace('typing.', '')


def describe_parameter(parameter):
    described = {'name': parameter.name,
                 'kind': parameter.kind.name.lower(),
                 'annotation': annotation_text(parameter),
                 'required': parameter.default is inspect.Parameter.empty
                 and parameter.kind not in (inspect.Parameter.VAR_POSITIONAL,
                                            inspect.Parameter.VAR_KEYWORD)}
    if parameter.default is not inspect.Parameter.empty:
        described['default'] = jsonable(parameter.default)
    return described


# -- configuration -----------------------------------------------------

def expose_task(config, task):
    """Directive: let ``task`` (a task or its dotted name) start over HTTP."""
    task = config.maybe_dotted(task)
    if not isinstance(task, PyramidTask):
        raise ConfigurationError(
            f'expose_task({task!r}): not a task declared with @task')

    def register():
        exposed_tasks(config.registry)[task.name] = ExposedTask(task)

    config.action(('myapp.jobs.expose_task', task.name), register)


def exposed_tasks(registry):
    """{name: ExposedTask} of the app's exposed tasks."""
    return registry.setdefault(EXPOSED_TASKS, {})


def exposed_task(registry, name):
    """The exposed task called ``name``, or None."""
    return exposed_tasks(registry).get(name)
