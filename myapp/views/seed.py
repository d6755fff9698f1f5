"""Seed 000's flow as a page: queue ``add(5, 5)``, then watch its result.

The first myapp queued ``add.delay(5, 5)`` from a view and showed the
task's id, its state and ``ready()``; reloading showed it move from PENDING
to SUCCESS.  The same here, read from Celery's result backend (the job
pages read the jobs table instead), behind a CSRF-protected button.
"""
from pyramid.csrf import check_csrf_token
from pyramid.httpexceptions import HTTPNotFound
from pyramid.view import view_config

from .. import tasks
from ..celery_integration import Origin
from ..jobs.inputs import JOB_ID
from ..jobs.presentation import redirect
from ..security import OPERATE

SEED_PAGE = 'myapp:templates/seed_add.jinja2'


@view_config(route_name='seed.add', request_method='GET', renderer=SEED_PAGE)
def seed_form(request):
    return {'result': None}


@view_config(route_name='seed.add', request_method='POST',
             permission=OPERATE)
def queue_add(request):
    check_csrf_token(request)
    result = tasks.add.apply_async((5, 5), origin=Origin.http())
    return redirect(request, 'seed.result', id=result.id)


@view_config(route_name='seed.result', request_method='GET',
             renderer=SEED_PAGE)
def seed_result(request):
    if not JOB_ID.fullmatch(request.matchdict['id']):
        raise HTTPNotFound()  # no task has such an id: not worth a query
    result = tasks.add.AsyncResult(request.matchdict['id'])
    ready = result.ready()  # once ready, the state below is cached
    return {'result': {'id': result.id, 'state': result.state,
                       'ready': ready,
                       'value': result.result if ready else None}}
