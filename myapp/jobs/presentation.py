"""Jobs as the API and the pages show them.

The pages show a job as the API does (:func:`job_json`) plus a few fields
for people, so the pages and ``static/jobs.js``, which updates them from
the API, read the same fields.
"""
import datetime
import json

from ..celery_integration import celery_app
from ..models.job import FINISHED
from ..models.types import UTC
from .exposure import exposed_tasks
from .pagination import page_query, split_page
from .values import plain_number

#: How many jobs the dashboard lists (and jobs.js asks the API for).
RECENT_JOBS = 20


def format_time(value):
    """The one place that formats times for people: ISO 8601 in the zone of
    ``[celery] timezone``, the zone crontab schedules are written in.

    The database keeps UTC; the offset in the text keeps it unambiguous.
    """
    if value is None:
        return None
    return value.astimezone(celery_app.timezone).isoformat(
        timespec='milliseconds')


def job_json(job):
    return {
        'id': job.id,
        'task': job.task_name,
        'state': job.state,
        'args': job.args,
        'kwargs': job.kwargs,
        'result': job.result,
        'error': error_json(job),
        'progress': progress_json(job),
        'origin': job.origin,
        'parent_id': job.parent_id,
        'worker': job.worker,
        'retries': job.retries,
        'queue': job.options.get('queue'),
        'eta': format_time(stored_time(job.options.get('eta'))),
        'sent_at': format_time(job.sent_at),
        'created_at': format_time(job.created_at),
        'started_at': format_time(job.started_at),
        'finished_at': format_time(job.finished_at),
    }


def error_json(job):
    """The error's type and message.  The traceback stays in the table:
    it shows code paths and values that are not the API client's business.
    """
    if job.error_type is None:
        return None
    return {'type': job.error_type, 'message': job.error_message}


def progress_json(job):
    if job.progress_current is None and job.progress_total is None:
        return None
    return {'current': plain_number(job.progress_current),
            'total': plain_number(job.progress_total),
            'message': job.progress_message}


def stored_time(text):
    """A time kept in the job's options (ISO 8601 text), as a datetime."""
    if text is None:
        return None
    value = datetime.datetime.fromisoformat(text)
    # Only pshell code sends a naive eta; Celery reads it in its timezone,
    # UTC unless configured.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# -- the pages ---------------------------------------------------------

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
