"""The workers and queues API: who runs jobs, what waits, what is stuck.

``GET /api/workers``: every worker seen, online or not; ``GET
/api/queues``: the messages waiting per queue, from the broker; ``GET
/api/jobs/stuck``: the jobs left running on a worker that is not online.
"""
from pyramid.view import view_config

from ..celery_integration import celery_app
from ..jobs.errors import ApiError
from ..jobs.inputs import page_size, single_values
from ..jobs.presentation import job_json
from .presentation import queues_json, worker_json
from .queues import BrokerUnavailable, known_queues, queue_depths
from .roster import ONLINE, online_hostnames, stuck_jobs_query, workers_seen


@view_config(route_name='api.workers', request_method='GET',
             renderer='json')
def list_workers(request):
    single_values(request.GET, ())
    seen = workers_seen(request.dbsession, request.registry)
    return {'workers': [worker_json(worker, status)
                        for worker, status in seen],
            'online': sum(status == ONLINE for _, status in seen)}


@view_config(route_name='api.queues', request_method='GET', renderer='json')
def list_queues(request):
    """503 when the broker does not answer (in :data:`.queues.
    BROKER_SECONDS`)."""
    single_values(request.GET, ())
    seen = workers_seen(request.dbsession, request.registry)
    try:
        return {'queues': queues_json(*waiting_messages(seen))}
    except BrokerUnavailable as exc:
        raise ApiError(503, 'the broker did not answer', str(exc)) from None


def waiting_messages(seen):
    """The depth of each queue worth showing, and the workers seen."""
    consumed = {name for worker, status in seen if status == ONLINE
                for name in worker.queues}
    return queue_depths(celery_app, known_queues(celery_app, consumed)), seen


@view_config(route_name='api.jobs.stuck', request_method='GET',
             renderer='json')
def stuck_jobs(request):
    """?limit= (as GET /api/jobs; newest first)."""
    params = single_values(request.GET, ('limit',))
    online = online_hostnames(workers_seen(request.dbsession,
                                           request.registry))
    jobs = request.dbsession.scalars(stuck_jobs_query(
        online, page_size(params.get('limit')))).all()
    return {'jobs': [job_json(job, listed=True) for job in jobs],
            'online': online}
