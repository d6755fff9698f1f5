"""The jobs API: start, look at, list, retry and revoke jobs, one or many;
list the tasks.

Routes are in :mod:`myapp.routes`; errors are JSON (:mod:`.errors`); what
starting and revoking do is :mod:`.actions`.
"""
from pyramid.view import view_config
from sqlalchemy import select

from ..models.job import Job
from ..security import OPERATE
from . import actions
from .errors import ApiError
from .exposure import exposed_tasks
from .groups import group_summary, members_query
from .inputs import (JOB_ID, BulkRequest, ListQuery, StartRequest,
                     idempotency_key, job_id, json_body, revoke_terminate)
from .pagination import page_query, split_page
from .presentation import group_json, job_json, location, set_location


@view_config(route_name='api.jobs', request_method='POST', renderer='json',
             permission=OPERATE)
def start_job(request):
    """Record the job and queue its message (sent when this commits)."""
    job = actions.start_job(request, StartRequest.from_request(request),
                            idempotency_key(request))
    request.response.status = 202
    set_location(request.response, location(request, 'api.job', id=job.id))
    return job_json(job)


@view_config(route_name='api.job', request_method='GET', renderer='json')
def show_job(request):
    return job_json(get_job(request))


@view_config(route_name='api.group', request_method='GET', renderer='json')
def show_group(request):
    """A group or chord as one unit; 404 if no job is in it."""
    group_id = request.matchdict['id']
    jobs = request.dbsession.scalars(members_query(group_id)).all() \
        if JOB_ID.fullmatch(group_id) else []
    if not jobs:
        raise ApiError(404, 'no such group', {'id': group_id})
    return group_json(group_summary(group_id, jobs))


@view_config(route_name='api.jobs', request_method='GET', renderer='json')
def list_jobs(request):
    query = ListQuery.from_request(request)
    jobs = request.dbsession.scalars(
        page_query(query.limit, query.before, query.filter)).all()
    page, next_cursor = split_page(jobs, query.limit)
    return {'jobs': [job_json(job, listed=True) for job in page],
            'next': next_cursor}


@view_config(route_name='api.job.revoke', request_method='POST',
             renderer='json',
             permission=OPERATE)
def revoke_job(request):
    """Revoke it (see :func:`.actions.revoke_job`); 409 if it finished."""
    terminate = revoke_terminate(request)
    job = get_job(request)
    if not actions.revoke_job(request, job, terminate):
        raise ApiError(409, 'the job has already finished',
                       {'state': job.state})
    request.response.status = 202
    return job_json(job)


@view_config(route_name='api.job.retry', request_method='POST',
             renderer='json', permission=OPERATE)
def retry_job(request):
    """Start it again as a new job (see :func:`.actions.retry_job`); 409
    unless it failed or was revoked."""
    json_body_is_empty(request)
    retry = actions.retry_job(request, get_job(request))
    request.response.status = 202
    set_location(request.response, location(request, 'api.job', id=retry.id))
    return job_json(retry)


@view_config(route_name='api.jobs.retry', request_method='POST',
             renderer='json', permission=OPERATE)
def retry_jobs(request):
    """Retry the failed and revoked jobs of a list of ids or of a filter,
    at most ``limit`` of them; the others are skipped, saying why."""
    asked = BulkRequest.from_request(request)
    jobs, next_cursor = bulk_jobs(request, asked)
    retries, skipped = actions.retry_jobs(request, jobs)
    request.response.status = 202
    return {'matched': len(jobs),
            'retried': [{'id': job.id, 'retry': retry.id}
                        for job, retry in retries],
            'skipped': skipped_json(skipped), 'next': next_cursor}


@view_config(route_name='api.jobs.revoke', request_method='POST',
             renderer='json', permission=OPERATE)
def revoke_jobs(request):
    """Revoke the unfinished jobs of a list of ids or of a filter (and
    ``terminate``, as for one), at most ``limit`` of them."""
    asked = BulkRequest.from_request(request, terminate=True)
    jobs, next_cursor = bulk_jobs(request, asked)
    revoked, skipped = actions.revoke_jobs(request, jobs, asked.terminate)
    request.response.status = 202
    return {'matched': len(jobs), 'revoked': [job.id for job in revoked],
            'skipped': skipped_json(skipped), 'next': next_cursor}


def bulk_jobs(request, asked):
    """(the jobs a bulk request names, the cursor of those after them or
    None).  Ids that name no job are left out."""
    if asked.ids is not None:
        found = {job.id: job for job in request.dbsession.scalars(
            select(Job).where(Job.id.in_(asked.ids)))}
        return [found[each] for each in asked.ids if each in found], None
    jobs = request.dbsession.scalars(page_query(
        asked.limit, asked.before, asked.filter)).all()
    return split_page(jobs, asked.limit)


def skipped_json(skipped):
    return [{'id': job.id, 'reason': reason} for job, reason in skipped]


def json_body_is_empty(request):
    """An empty body (or ``{}``), declared JSON as every POST of the API."""
    json_body(request, (), empty_ok=True)


@view_config(route_name='api.tasks', request_method='GET', renderer='json')
def list_tasks(request):
    return {'tasks': [exposed.describe() for name, exposed in
                      sorted(exposed_tasks(request.registry).items())]}


def get_job(request):
    found = request.dbsession.get(Job, job_id(request))
    if found is None:
        raise ApiError(404, 'no such job', {'id': request.matchdict['id']})
    return found
