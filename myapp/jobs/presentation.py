"""Jobs as the API shows them."""
import datetime

from ..celery_integration import celery_app
from ..models.types import UTC
from .values import plain_number


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
