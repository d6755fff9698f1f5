"""What can be done to periodic jobs over HTTP: add, change, delete one,
and run one now.

The one place for it: the JSON API (:mod:`.api`) and the pages
(:mod:`.pages`) both call these functions, so a periodic job made on a page
is checked exactly as over the API.  The definition itself is checked by
:mod:`.store`, as an ini section is; what only HTTP adds is checked here:
the name, and the project's rule that a task runs from HTTP only if it is
exposed (:mod:`myapp.jobs.exposure`).  A refusal is an
:class:`~myapp.jobs.errors.ApiError`, which the API answers as JSON and the
pages show on the page.
"""
import re

import sqlalchemy.exc

from ..celery_integration import Origin, PyramidTask, celery_app
from ..celery_integration.schedules import task_call_problem
from ..jobs.errors import ApiError
from ..jobs.exposure import InvalidArguments, exposed_task, exposed_tasks
from ..jobs.inputs import invalid
from ..jobs.recording import recorded_job
from ..models.schedule import SOURCE_API
from . import store

#: A periodic job's name: it is also in a path and in each run's origin
#: (``beat:NAME``).
NAME = re.compile(r'[A-Za-z0-9_.-]{1,200}', re.ASCII)
#: The fields whose change makes the job run another call.
CALL_FIELDS = ('task', 'args', 'kwargs')


def create(request, name, values):
    """Add the periodic job ``name``; return its row."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise invalid('name', 'from 1 to 200 letters, digits or "_.-", '
                      'e.g. "nightly-report"')
    if store.get(request.dbsession, name) is not None:
        raise name_taken(name)
    check_exposed(request.registry, values)
    try:
        return stored(store.create, request.dbsession, celery_app, name,
                      values)
    except sqlalchemy.exc.IntegrityError:
        # The primary key: a concurrent request took the name since our
        # look-up.  The answer is the same 409 (this transaction aborts).
        raise name_taken(name) from None


def name_taken(name):
    return ApiError(409, f'a periodic job named "{name}" already exists',
                    {'name': name})


def change(request, job, values):
    """Change the fields given in ``values``; an ini job only ``enabled``.

    A new call (task or arguments) of a job made over HTTP must be one HTTP
    may start; an ini job's call is the ini author's, and cannot change
    here anyway.
    """
    if job.source == SOURCE_API and any(
            field in values and values[field] != getattr(job, field)
            for field in CALL_FIELDS):
        current = store.definition_of(job)._asdict()
        check_exposed(request.registry, {**current, **values})
    return stored(store.change, request.dbsession, celery_app, job, values)


def delete(request, job):
    """Remove a job made over HTTP; an ini job is removed from the ini."""
    try:
        store.delete(request.dbsession, job)
    except store.OwnedByIni as exc:
        raise ApiError(409, f'defined in the ini section [{exc.section}]: '
                       'remove the section there to delete it',
                       {'section': exc.section}) from None


def stored(operation, *args):
    """``operation(*args)`` of :mod:`.store`, its refusals as API errors.

    The store checks everything before it writes: a refusal leaves the
    session as it was.
    """
    try:
        return operation(*args)
    except store.InvalidSchedule as exc:
        detail = exc.problem + (f' ({exc.hint})' if exc.hint else '')
        raise invalid(exc.field, detail) from None
    except store.OwnedByIni as exc:
        raise ApiError(409, str(exc), {'section': exc.section,
                                       'fields': exc.fields}) from None


def check_exposed(registry, values):
    """A task HTTP may start (:func:`myapp.jobs.actions.startable_task`'s
    rule), with arguments it accepts.

    Values of the wrong type are left to :mod:`.store`, which names them.
    """
    task, args, kwargs = (values.get(field) for field in CALL_FIELDS)
    if not isinstance(task, str) or not task:
        return
    exposed = exposed_task(registry, task)
    if exposed is None:
        raise invalid('task', {
            'problem': f'task "{task}" cannot be started over HTTP',
            'available': sorted(exposed_tasks(registry))})
    args = [] if args is None else args
    kwargs = {} if kwargs is None else kwargs
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        return
    try:
        exposed.check_arguments(args, kwargs)
    except InvalidArguments as exc:
        raise invalid(arguments_field(exc, kwargs),
                      {'problem': str(exc), 'arguments': exc.detail}) \
            from None


def arguments_field(exc, kwargs):
    """``kwargs`` when the problem is in a keyword argument, else ``args``.
    """
    if isinstance(exc.detail, dict):
        return 'kwargs' if set(exc.detail) <= set(kwargs) else 'args'
    return 'kwargs' if 'keyword' in str(exc.detail) else 'args'


def run_now(request, job):
    """Send one run of ``job`` now, as beat would (its options, the origin
    ``beat:NAME``), whether or not it is enabled; return the job's row.

    Recorded in the request's transaction and sent when it commits, as
    :func:`myapp.jobs.actions.start_job` does.  Beat's own count
    (``last_run_at``, ``total_runs``) is not touched: it says when beat
    sent it, and when it will next.
    """
    problem = task_call_problem(celery_app, job.task, job.args, job.kwargs)
    if problem:
        field, text, hint = problem
        raise ApiError(409, f'periodic job "{job.name}" cannot run: {text}',
                       {'field': field, 'hint': hint})
    task = celery_app.tasks[job.task]
    if not isinstance(task, PyramidTask):
        # Beat sends these without a job row; there would be none to show.
        raise ApiError(409, f'task "{job.task}" is not one of the app\'s '
                       'tasks (@task): only beat sends it',
                       {'task': job.task})
    sent = task.apply_async(job.args, job.kwargs,
                            origin=Origin.beat(job.name), **job.options)
    return recorded_job(request, sent.id)
