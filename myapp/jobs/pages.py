"""The job pages: start a job, follow it, cancel it.

``/jobs`` is the dashboard: a form to start an exposed task, and the recent
jobs.  ``/jobs/{id}`` follows one job, with a button to cancel it.  Plain
HTML forms, each with a CSRF token; without JavaScript a reload shows the
latest state, and ``static/jobs.js`` adds live updates from the JSON API.

The form is read by the API's rules (:class:`~.inputs.StartRequest`) and
the job started or cancelled by :mod:`.actions`, as over the API; a refusal
is the API's error, shown on the page.
"""
from pyramid.csrf import check_csrf_token
from pyramid.httpexceptions import HTTPNotFound
from pyramid.view import view_config

from ..models import Job
from ..models.job import STATES
from ..security import OPERATE
from . import actions
from .errors import ApiError
from .inputs import (FILTER_FIELDS, JOB_ID, MAX_BULK_JOBS, StartRequest,
                     cursor, job_filter)
from .pagination import page_query
from .groups import group_summary, members_query
from .presentation import (RECENT_JOBS, children, job_for_page, recent_jobs,
                           redirect, retried_as, retry_chain, startable_tasks,
                           state_counts)

DASHBOARD = 'myapp:templates/jobs.jinja2'
JOB_PAGE = 'myapp:templates/job.jinja2'


@view_config(route_name='jobs', request_method='GET', renderer=DASHBOARD)
def dashboard(request):
    return dashboard_values(request)


@view_config(route_name='jobs', request_method='POST', renderer=DASHBOARD,
             permission=OPERATE)
def start_job_from_form(request):
    """Start the job and show it; bad input shows the form again, with the
    API's error, and queues nothing."""
    check_csrf_token(request)
    try:
        job = actions.start_job(request, StartRequest.from_form(request))
    except ApiError as exc:
        request.response.status = exc.status
        return dashboard_values(request, form=request.POST, error=exc)
    return redirect(request, 'job', id=job.id)


def dashboard_values(request, form=None, error=None):
    """The start form, and the jobs the filter in the query string shows,
    a page at a time, with their counts per state."""
    values = {
        'tasks': startable_tasks(request.registry),
        'form': form or {},
        'error': error,
        'states': STATES,
        'shown_filter': {},
        'filter_error': None,
        'jobs': [],
        'counts': {},
        'next_url': None,
    }
    try:
        job_filter, before = listed_jobs_filter(request)
    except ApiError as exc:
        request.response.status = 400
        values['filter_error'] = exc
        values['shown_filter'] = filter_params(request)
        return values
    query = {**filter_params(request), 'limit': RECENT_JOBS}
    if before is not None:
        query['before'] = request.GET['before']
    jobs, next_cursor = recent_jobs(request.dbsession, RECENT_JOBS, before,
                                    job_filter)
    values.update(
        shown_filter=filter_params(request), jobs=jobs,
        counts=state_counts(request.dbsession, job_filter),
        jobs_api_url=request.route_url('api.jobs', _query=query),
        next_url=None if next_cursor is None else request.route_url(
            'jobs', _query={**filter_params(request),
                            'before': next_cursor}))
    return values


def filter_params(request, fields=None):
    """The filter's fields the query string (or ``fields``) gives: empty
    ones mean any."""
    fields = request.GET if fields is None else fields
    return {name: fields[name] for name in FILTER_FIELDS
            if fields.get(name, '').strip()}


def listed_jobs_filter(request):
    """(the filter, the cursor of the page) of the query string."""
    return job_filter(filter_params(request)), \
        cursor(request.GET.get('before') or None)


#: What each bulk action does, in the words of its pages.
BULK_ACTIONS = {'jobs.retry': ('retry', 'retried'),
                'jobs.revoke': ('revoke', 'revoked')}
BULK_PAGE = 'myapp:templates/bulk.jinja2'


@view_config(route_name='jobs.retry', request_method='POST',
             renderer=BULK_PAGE, permission=OPERATE)
@view_config(route_name='jobs.revoke', request_method='POST',
             renderer=BULK_PAGE, permission=OPERATE)
def bulk_action(request):
    """Retry or revoke the jobs the dashboard's filter shows (the newest
    :data:`~.inputs.MAX_BULK_JOBS`), as the API's bulk calls do: first a
    page that says how many it will touch, then, confirmed, what was done.
    """
    check_csrf_token(request)
    verb, done = BULK_ACTIONS[request.matched_route.name]
    params = filter_params(request, request.POST)
    try:
        chosen = job_filter(params)
        jobs, more = bulk_page_jobs(request, chosen)
    except ApiError as exc:
        request.response.status = exc.status
        return {'verb': verb, 'done': done, 'filter': params, 'error': exc,
                'filter_times': {}}
    values = {'verb': verb, 'done': done, 'filter': params, 'error': None,
              'filter_times': filter_times(chosen),
              'count': len(jobs), 'more': more, 'result': None}
    if request.POST.get('confirmed') == 'yes':
        if verb == 'retry':
            acted, skipped = actions.retry_jobs(request, jobs)
            acted = [job for job, _ in acted]
        else:
            acted, skipped = actions.revoke_jobs(request, jobs)
        values['result'] = {'acted': len(acted), 'skipped': skipped}
    return values


def filter_times(chosen):
    """The filter's ``after`` and ``until`` as the moments they were read
    as (a form's time without an offset is in the app's zone), for the page
    to show them as it shows every time."""
    return {name: getattr(chosen, name) for name in ('after', 'until')
            if getattr(chosen, name) is not None}


def bulk_page_jobs(request, chosen):
    """(the newest jobs of the filter a bulk action touches, whether more
    match than that)."""
    jobs = request.dbsession.scalars(
        page_query(MAX_BULK_JOBS, None, chosen)).all()
    return jobs[:MAX_BULK_JOBS], len(jobs) > MAX_BULK_JOBS


@view_config(route_name='job.retry', request_method='POST',
             renderer=JOB_PAGE, permission=OPERATE)
def retry(request):
    """Start it again, as ``POST /api/jobs/ID/retry`` does, and show the
    new job; a refusal is shown on the job's page."""
    check_csrf_token(request)
    job = find_job(request)
    try:
        new = actions.retry_job(request, job)
    except ApiError as exc:
        request.response.status = exc.status
        return job_page_values(request, job, error=exc.error)
    return redirect(request, 'job', id=new.id)


@view_config(route_name='job', request_method='GET', renderer=JOB_PAGE)
def job_page(request):
    return job_page_values(request, find_job(request))


@view_config(route_name='job.cancel', request_method='POST',
             renderer=JOB_PAGE,
             permission=OPERATE)
def cancel(request):
    """Revoke it as ``POST /api/jobs/ID/revoke`` does, without terminate:
    a running job stops at its next progress report, sooner if the
    broadcast reaches its worker."""
    check_csrf_token(request)
    job = find_job(request)
    if actions.revoke_job(request, job):
        return redirect(request, 'job', id=job.id)
    request.response.status = 409
    return job_page_values(request, job,
                           error='It has already finished: there is '
                                 'nothing to cancel.')


def job_page_values(request, job, error=None):
    shown = job_for_page(job)
    shown['retried_as'] = retried_as(job)
    shown['retry_chain'] = retry_chain(job)
    shown['children'] = children(job)
    # A chord's callback names Celery's chord_unlock as its parent: a task
    # of Celery's own, not a job.
    shown['parent_recorded'] = job.parent_id is not None and \
        request.dbsession.get(Job, job.parent_id) is not None
    shown['group'] = None if job.group_id is None else group_summary(
        job.group_id, request.dbsession.scalars(
            members_query(job.group_id)).all())
    # The API leaves it out; the pages are the operators'.
    shown['traceback'] = job.error_traceback
    return {
        'job': shown,
        'error': error,
        'job_api_url': request.route_url('api.job', id=job.id),
    }


GROUP_PAGE = 'myapp:templates/group.jinja2'


@view_config(route_name='group', request_method='GET', renderer=GROUP_PAGE)
def group_page(request):
    """A group or chord as one unit (``GET /api/groups/ID``'s page); 404
    if no job is in it."""
    group_id = request.matchdict['id']
    jobs = request.dbsession.scalars(members_query(group_id)).all() \
        if JOB_ID.fullmatch(group_id) else []
    if not jobs:
        raise HTTPNotFound()
    summary = group_summary(group_id, jobs)
    return {'group': summary,
            'members': [job_for_page(job) for job in summary['members']],
            'callback': None if summary['callback'] is None
            else job_for_page(summary['callback']),
            'group_api_url': request.route_url('api.group', id=group_id)}


def find_job(request):
    """The job the path names; 404 if none (or if it names none that can
    be: not a job id)."""
    job_id = request.matchdict['id']
    job = request.dbsession.get(Job, job_id) \
        if JOB_ID.fullmatch(job_id) else None
    if job is None:
        raise HTTPNotFound()
    return job
