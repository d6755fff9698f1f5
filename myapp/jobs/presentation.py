"""Jobs as the API and the pages show them.

The pages show a job as the API does (:func:`job_json`) plus a few fields
for people, so the pages and ``static/jobs.js``, which updates them from
the API, read the same fields.

A job's arguments and result can be large: lists and pages show a preview
of each, the start of its JSON (:data:`~.values.PREVIEW_CHARS`
characters); only ``GET /api/jobs/ID`` gives the whole value.
"""
import datetime
from dataclasses import replace

from pyramid.httpexceptions import HTTPSeeOther
from sqlalchemy import func, select
from sqlalchemy.orm import object_session

from celery.utils.time import timezone as celery_zones

from ..celery_integration import celery_app
from ..models.job import FINISHED, RETRYABLE, STATES, Job
from ..models.types import UTC
from .exposure import exposed_tasks
from .groups import children_query
from .pagination import EVERY_JOB, page_query, split_page
from .values import PREVIEW_CHARS, head, json_preview, plain_number

#: How many jobs the dashboard lists (and jobs.js asks the API for).
RECENT_JOBS = 20


def format_time(value, zone=None):
    """The one place that formats times for people: ISO 8601 in the zone of
    ``[celery] timezone``, the zone crontab schedules are written in, or
    in ``zone`` (a tz database name: a periodic job's own).

    The database keeps UTC; the offset in the text keeps it unambiguous.
    """
    if value is None:
        return None
    return value.astimezone(display_zone(zone)).isoformat(
        timespec='milliseconds')


def display_zone(name=None):
    """The zone times are shown in: ``[celery] timezone`` (UTC if unset),
    or the tz database zone ``name`` (a periodic job's own).  An unknown
    name raises ``KeyError`` (``ValueError`` for one that cannot be)."""
    return celery_app.timezone if name is None else \
        celery_zones.get_timezone(name)


#: The values shown as a preview in lists.
PREVIEWED = ('args', 'kwargs', 'result')


def job_json(job, listed=False):
    """The job as the API shows it.  Each of ``args``, ``kwargs`` and
    ``result`` comes with ``X_preview``, the start of its JSON, and
    ``X_truncated``, whether that preview is cut; ``listed`` (a list of
    jobs) leaves a value whose preview is cut out: it is null there.
    """
    shown = {
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
        'retry_of': job.retry_of,
        'group_id': job.group_id,
        'queue': job.options.get('queue'),
        'eta': format_time(stored_time(job.options.get('eta'))),
        'sent_at': format_time(job.sent_at),
        'created_at': format_time(job.created_at),
        'started_at': format_time(job.started_at),
        'finished_at': format_time(job.finished_at),
    }
    if not listed:
        shown['retried_as'] = retried_as(job)
        shown['children'] = children(job)
    for name in PREVIEWED:
        preview, truncated = json_preview(shown[name])
        shown[f'{name}_preview'], shown[f'{name}_truncated'] = \
            preview, truncated
        if listed and truncated:
            shown[name] = None
    return shown


def retried_as(job):
    """The ids of the jobs that retried this one, oldest first (by the
    small index of ``retry_of``)."""
    dbsession = object_session(job)
    if dbsession is None or job.state not in RETRYABLE:
        return []
    return dbsession.scalars(
        select(Job.id).where(Job.retry_of == job.id)
        .order_by(Job.created_at)).all()


#: How far back the chain of retries of a job is followed.
MAX_RETRY_CHAIN = 20


def children(job):
    """The ids of the jobs it sent while it ran (a chain's next step, a
    ``link``, a task sending another), oldest first; none before it ran
    (so a job just started costs no query)."""
    dbsession = object_session(job)
    if dbsession is None or job.started_at is None:
        return []
    return dbsession.scalars(
        children_query(job.id).with_only_columns(Job.id)).all()


def group_json(summary):
    """A group as one unit (:func:`.groups.group_summary`), its jobs as
    a list of the API shows them."""
    shown = {name: value for name, value in summary.items()
             if name not in ('members', 'callback')}
    shown['jobs'] = [job_json(job, listed=True)
                     for job in summary['members']]
    callback = summary['callback']
    shown['callback'] = None if callback is None \
        else job_json(callback, listed=True)
    return shown


def retry_chain(job):
    """The ids of the jobs this one retries, the first job first: its
    ``retry_of``, that job's, and so on."""
    dbsession, chain, current = object_session(job), [], job
    while current is not None and current.retry_of \
            and len(chain) < MAX_RETRY_CHAIN:
        chain.insert(0, current.retry_of)
        current = dbsession.get(Job, current.retry_of)
    return chain


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
    """The job as a list of the API shows it, plus whether it has finished,
    and previews of the call and of the result as JSON text."""
    shown = job_json(job, listed=True)
    shown['finished'] = job.state in FINISHED
    shown['retryable'] = job.state in RETRYABLE
    shown['call'] = call_text(job.task_name, job.args, job.kwargs)
    shown['result_text'] = shown['result_preview']
    return shown


def call_text(task, args, kwargs, limit=PREVIEW_CHARS):
    """``myapp.tasks.slow_add(2, 3, seconds=3)``, values written in JSON;
    the arguments cut after ``limit`` characters, as a preview is."""
    arguments, size = [], 0
    named = [(None, value) for value in args or ()] + \
        list((kwargs or {}).items())
    for name, value in named:
        if size > limit:  # the rest would be cut anyway
            arguments.append('…' * (limit + 1))
            break
        text, _ = json_preview(value, limit)
        arguments.append(text if name is None else f'{name}={text}')
        size += len(arguments[-1]) + 2
    return f'{task}({head(", ".join(arguments), limit)})'


def recent_jobs(dbsession, limit=RECENT_JOBS, before=None,
                job_filter=EVERY_JOB):
    """(the newest jobs first, as :func:`job_for_page` shows them, the
    cursor of the next page or None)."""
    jobs, next_cursor = split_page(dbsession.scalars(
        page_query(limit, before, job_filter)).all(), limit)
    return [job_for_page(job) for job in jobs], next_cursor


#: Counts per state stop here ("1000+"): a count is a read of every row.
COUNT_CAP = 1000


def state_counts(dbsession, job_filter=EVERY_JOB, cap=None):
    """``{state: (count, capped)}`` of the jobs the filter shows, each
    read no further than ``cap`` (:data:`COUNT_CAP`) rows."""
    cap = COUNT_CAP if cap is None else cap
    counts = {}
    for state in STATES:
        narrowed = replace(job_filter, state=state)
        rows = select(Job.id).where(*narrowed.conditions()) \
            .limit(cap + 1).subquery()
        found = dbsession.scalar(select(func.count()).select_from(rows))
        counts[state] = (min(found, cap), found > cap)
    return counts


def startable_tasks(registry):
    """The exposed tasks as ``GET /api/tasks`` describes them, each with its
    call signature, e.g. ``slow_add(x: float, y: float, seconds: int = 10)``.
    """
    return [dict(exposed.describe(), signature=f'{name}{exposed.signature}')
            for name, exposed in sorted(exposed_tasks(registry).items())]


# -- addresses -------------------------------------------------------------

#: ``[app:main]`` setting: the application's public URL, e.g.
#: ``https://jobs.example.com`` (with the path it is mounted at, if any).
APP_URL_SETTING = 'myapp.url'


def location(request, route_name, **parts):
    """The address of a route for a ``Location`` header: from
    ``myapp.url`` when the ini sets it, else root-relative
    (``/api/jobs/ID``, which RFC 7231 allows), never from the request's
    ``Host``, which the client chooses."""
    app_url = request.registry.settings.get(APP_URL_SETTING, '').strip()
    if app_url:
        return request.route_url(route_name, _app_url=app_url.rstrip('/'),
                                 **parts)
    return request.route_path(route_name, **parts)


def set_location(response, url):
    """``response.location = url``, and sent as it is.

    WebOb (1.8) makes a relative ``Location`` absolute as it sends the
    response, from the request's ``Host``: the very header this avoids.
    """
    response.location = url
    response._abs_headerlist = lambda environ: list(response.headerlist)
    return response


def redirect(request, route_name, **parts):
    """303 to a route (after a form), at its :func:`location`."""
    return set_location(HTTPSeeOther(), location(request, route_name,
                                                 **parts))
