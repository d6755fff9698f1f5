"""The jobs API: start, look at, list and revoke jobs; list the tasks.

Routes are in :mod:`myapp.routes`; errors are JSON (:mod:`.errors`).
"""
import logging

import pyramid_retry
import sqlalchemy.exc
from pyramid.view import view_config
from sqlalchemy import select

from ..celery_integration import celery_app
from ..models.job import Job
from . import lifecycle
from .errors import ApiError
from .exposure import InvalidArguments, exposed_task, exposed_tasks
from .inputs import (ListQuery, StartRequest, idempotency_key, job_id,
                     revoke_terminate)
from .pagination import page_query, split_page
from .presentation import job_json

log = logging.getLogger(__name__)


class IdempotencyKeyRace(pyramid_retry.RetryableException):
    """Another request with the same key committed first: try again, and
    find its job."""


@view_config(route_name='api.jobs', request_method='POST', renderer='json')
def start_job(request):
    """Record the job and queue its message (sent when this commits)."""
    asked = StartRequest.from_request(request)
    key = idempotency_key(request)
    if key is not None:
        earlier = request.dbsession.scalar(
            select(Job).where(Job.idempotency_key == key))
        if earlier is not None:
            return accepted(request, same_request(earlier, asked))
    task = startable_task(request, asked)
    sent = task.apply_async(asked.args, asked.kwargs, origin='http',
                            **asked.options)
    job = request.dbsession.get(Job, sent.id)  # recorded by .recording
    if key is not None:
        claim_idempotency_key(request, job, key)
    return accepted(request, job)


def startable_task(request, asked):
    exposed = exposed_task(request.registry, asked.task)
    if exposed is None:
        raise ApiError(400, f'task "{asked.task}" cannot be started over '
                       'HTTP', {'available': sorted(exposed_tasks(
                           request.registry))})
    try:
        exposed.check_arguments(asked.args, asked.kwargs)
    except InvalidArguments as exc:
        raise ApiError(400, str(exc), exc.detail) from None
    return exposed.task


def same_request(job, asked):
    """The job a key names, provided the key is used for the same call."""
    if (job.task_name, job.args, job.kwargs) != \
            (asked.task, asked.args, asked.kwargs):
        raise ApiError(422, 'this Idempotency-Key was used for another '
                       'request', {'job': job.id})
    return job


def claim_idempotency_key(request, job, key):
    job.idempotency_key = key
    try:
        request.dbsession.flush()
    except sqlalchemy.exc.IntegrityError:
        # The unique key: a concurrent request took it between our look-up
        # and now.  This transaction (and its send) is abandoned; the retry
        # finds the other request's job.
        raise IdempotencyKeyRace(key) from None


def accepted(request, job):
    request.response.status = 202
    request.response.location = request.route_url('api.job', id=job.id)
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
    return {'jobs': [job_json(job) for job in page], 'next': next_cursor}


@view_config(route_name='api.job.revoke', request_method='POST',
             renderer='json')
def revoke_job(request):
    """Revoke it: a queued job never runs, a running one stops.

    The row says REVOKED at once, and every run checks the row as it
    starts and at each progress report; the broadcast to the workers
    (after commit) stops it sooner, or at once with ``terminate``.
    """
    terminate = revoke_terminate(request)
    job = get_job(request)
    if not lifecycle.revoke(request.dbsession, job.id):
        request.dbsession.refresh(job)
        raise ApiError(409, 'the job has already finished',
                       {'state': job.state})
    request.dbsession.refresh(job)
    request.tm.get().addAfterCommitHook(
        broadcast_revoke, args=(job.id, terminate))
    request.response.status = 202
    return job_json(job)


def broadcast_revoke(committed, job_id, terminate):
    if not committed:
        return
    try:
        celery_app.control.revoke(job_id, terminate=terminate)
    except Exception as exc:
        # The row is REVOKED: the job stops at its next check anyway.
        log.warning('revoke of job %s not broadcast: %s: %s', job_id,
                    type(exc).__name__, exc)


@view_config(route_name='api.tasks', request_method='GET', renderer='json')
def list_tasks(request):
    return {'tasks': [exposed.describe() for name, exposed in
                      sorted(exposed_tasks(request.registry).items())]}


def get_job(request):
    found = request.dbsession.get(Job, job_id(request))
    if found is None:
        raise ApiError(404, 'no such job', {'id': request.matchdict['id']})
    return found

