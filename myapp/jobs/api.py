"""The jobs API: start, look at, list and revoke jobs; list the tasks.

Routes are in :mod:`myapp.routes`; errors are JSON (:mod:`.errors`); what
starting and revoking do is :mod:`.actions`.
"""
from pyramid.view import view_config

from ..models.job import Job
from ..security import OPERATE
from . import actions
from .errors import ApiError
from .exposure import exposed_tasks
from .inputs import (ListQuery, StartRequest, idempotency_key, job_id,
                     revoke_terminate)
from .pagination import page_query, split_page
from .presentation import job_json, location, set_location


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


@view_config(route_name='api.jobs', request_method='GET', renderer='json')
def list_jobs(request):
    query = ListQuery.from_request(request)
    jobs = request.dbsession.scalars(
        page_query(query.limit, query.before, **query.filters)).all()
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


@view_config(route_name='api.tasks', request_method='GET', renderer='json')
def list_tasks(request):
    return {'tasks': [exposed.describe() for name, exposed in
                      sorted(exposed_tasks(request.registry).items())]}


def get_job(request):
    found = request.dbsession.get(Job, job_id(request))
    if found is None:
        raise ApiError(404, 'no such job', {'id': request.matchdict['id']})
    return found
