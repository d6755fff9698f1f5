"""What the job pages (:mod:`myapp.views.jobs`) need from the jobs package.

The pages start and cancel jobs the way the JSON API does: the dashboard's
form becomes the API's :class:`~.inputs.StartRequest`, checked by the same
rules, and a problem is the same :class:`~.errors.ApiError`, shown on the
page instead of as JSON.  Jobs are shown as the API shows them
(:func:`~.presentation.job_json`), so the pages and ``static/jobs.js``, which
updates them from the API, read the same fields.
"""
import json

from ..models.job import FINISHED
from . import lifecycle
from .exposure import exposed_tasks
from .inputs import (StartRequest, check_body_size, invalid,
                     refuse_constant)
from .pagination import page_query, split_page
from .presentation import job_json
from .views import broadcast_revoke, startable_task

#: How many jobs the dashboard lists (and jobs.js asks the API for).
RECENT_JOBS = 20


# -- starting and cancelling -------------------------------------------

def start_request_from_form(request):
    """The form's ``task``, and its ``args`` and ``kwargs`` as JSON text,
    as large as a JSON body may be."""
    check_body_size(request)
    form = request.POST
    return StartRequest.from_body({
        'task': form.get('task', ''),
        'args': json_field(form, 'args', empty=[]),
        'kwargs': json_field(form, 'kwargs', empty={}),
    })


def json_field(form, name, empty):
    text = form.get(name, '').strip()
    if not text:
        return empty
    try:
        return json.loads(text, parse_constant=refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise invalid(name, f'not JSON: {exc}') from None


def start_job(request, asked):
    """Queue the job (it leaves when the request commits); return its id."""
    task = startable_task(request, asked)
    return task.apply_async(asked.args, asked.kwargs, origin='http',
                            **asked.options).id


def cancel_job(request, job):
    """Revoke it as ``POST /api/jobs/ID/revoke`` does, without terminate:
    a queued job never runs, a running one stops at its next progress
    report, sooner if the broadcast reaches its worker.  False if it has
    already finished."""
    if not lifecycle.revoke(request.dbsession, job.id):
        return False
    request.tm.get().addAfterCommitHook(broadcast_revoke,
                                        args=(job.id, False))
    return True


# -- showing -----------------------------------------------------------

def job_for_page(job):
    """The job as the API shows it, plus whether it has finished, the call
    as text and the result as JSON text."""
    shown = job_json(job)
    shown['finished'] = job.state in FINISHED
    shown['call'] = call_text(shown['task'], shown['args'], shown['kwargs'])
    shown['result_text'] = json.dumps(shown['result'])
    return shown


def call_text(task, args, kwargs):
    """``myapp.tasks.slow_add(2, 3, seconds=3)``, values written in JSON."""
    arguments = [json.dumps(value) for value in args]
    arguments += [f'{name}={json.dumps(value)}'
                  for name, value in kwargs.items()]
    return f'{task}({", ".join(arguments)})'


def recent_jobs(dbsession, limit=RECENT_JOBS):
    """The newest jobs first, as :func:`job_for_page` shows them."""
    jobs, _ = split_page(dbsession.scalars(page_query(limit)).all(), limit)
    return [job_for_page(job) for job in jobs]


def startable_tasks(registry):
    """The exposed tasks as ``GET /api/tasks`` describes them, each with its
    call signature, e.g. ``slow_add(x: float, y: float, seconds: int = 10)``.
    """
    return [dict(exposed.describe(), signature=f'{name}{exposed.signature}')
            for name, exposed in sorted(exposed_tasks(registry).items())]
