"""The ``/workers`` page: the workers seen, the queues, the stuck jobs.

A stuck job (running on a worker that is not online) can be cancelled, or
cancelled and started again as a new job in one press: what an operator
does once a worker died with jobs in hand.
"""
from pyramid.csrf import check_csrf_token
from pyramid.view import view_config

from ..celery_integration import celery_app
from ..jobs import actions
from ..jobs.errors import ApiError
from ..jobs.pages import find_job
from ..jobs.presentation import job_for_page, redirect
from ..models.job import RUNNING
from ..security import OPERATE
from .presentation import queues_json, worker_json
from .queues import BrokerUnavailable, known_queues, queue_depths
from .roster import ONLINE, online_hostnames, stuck_jobs_query, workers_seen

WORKERS_PAGE = 'myapp:templates/workers.jinja2'
#: The stuck jobs the page lists (the API pages through more).
STUCK_SHOWN = 50


@view_config(route_name='workers', request_method='GET',
             renderer=WORKERS_PAGE)
def workers_page(request):
    return workers_page_values(request)


def workers_page_values(request, error=None):
    seen = workers_seen(request.dbsession, request.registry)
    online = online_hostnames(seen)
    consumed = {name for worker, status in seen if status == ONLINE
                for name in worker.queues}
    try:
        queues = queues_json(queue_depths(
            celery_app, known_queues(celery_app, consumed)), seen)
        broker_error = None
    except BrokerUnavailable as exc:
        queues, broker_error = [], str(exc)
    stuck = request.dbsession.scalars(
        stuck_jobs_query(online, STUCK_SHOWN)).all()
    return {
        'workers': [worker_json(worker, status) for worker, status in seen],
        'online_count': len(online),
        'queues': queues,
        'broker_error': broker_error,
        'stuck': [job_for_page(job) for job in stuck],
        'error': error,
    }


@view_config(route_name='workers.rerun', request_method='POST',
             renderer=WORKERS_PAGE, permission=OPERATE)
def cancel_and_retry(request):
    """Revoke a stuck job and start it again as a new job (its
    ``retry_of`` names the stuck one); 409 if it is not stuck any more."""
    check_csrf_token(request)
    job = find_job(request)
    online = online_hostnames(workers_seen(request.dbsession,
                                           request.registry))
    if job.state not in RUNNING or job.worker in online:
        request.response.status = 409
        return workers_page_values(
            request, error=f'Job {job.id} is not stuck any more '
                           f'({job.state} on {job.worker}): nothing done.')
    try:  # checked first: a job that cannot start again is not revoked
        actions.startable_task(request.registry, actions.RetryRequest(
            job.task_name, job.args, job.kwargs))
    except ApiError as exc:
        request.response.status = exc.status
        return workers_page_values(
            request, error=f'Job {job.id} cannot be started again: '
                           f'{exc.error}. Nothing done.')
    actions.revoke_job(request, job)
    return redirect(request, 'job', id=actions.retry_job(request, job).id)
