"""The periodic jobs API: list, add, show, change, delete, run now.

Routes are in :mod:`myapp.routes`; errors are the jobs API's JSON
(:mod:`myapp.jobs.errors`), and bodies are read by its strict rules
(:func:`myapp.jobs.inputs.json_body`); what each change does is
:mod:`.actions`.
"""
from pyramid.httpexceptions import HTTPNoContent
from pyramid.view import view_config

from ..jobs.errors import ApiError
from ..jobs.inputs import json_body
from ..jobs.presentation import job_json, location, set_location
from ..security import OPERATE
from . import actions, store
from .presentation import schedule_json

#: What ``PATCH`` may send; ``POST`` adds the name.
CHANGE_FIELDS = store.DEFINITION_FIELDS
CREATE_FIELDS = ('name',) + CHANGE_FIELDS


@view_config(route_name='api.schedules', request_method='GET',
             renderer='json')
def list_schedules(request):
    return {'schedules': [schedule_json(request.dbsession, job)
                          for job in store.all_jobs(request.dbsession)]}


@view_config(route_name='api.schedules', request_method='POST',
             renderer='json',
             permission=OPERATE)
def create_schedule(request):
    """Add it; beat sends it from its next tick."""
    values = json_body(request, CREATE_FIELDS)
    job = actions.create(request, values.pop('name', None), values)
    request.response.status = 201
    set_location(request.response,
                 location(request, 'api.schedule', name=job.name))
    return schedule_json(request.dbsession, job)


@view_config(route_name='api.schedule', request_method='GET',
             renderer='json')
def show_schedule(request):
    return schedule_json(request.dbsession, get_schedule(request))


@view_config(route_name='api.schedule', request_method='PATCH',
             renderer='json',
             permission=OPERATE)
def change_schedule(request):
    """Change the fields sent; the others stay."""
    values = json_body(request, CHANGE_FIELDS)
    job = actions.change(request, get_schedule(request), values)
    return schedule_json(request.dbsession, job)


@view_config(route_name='api.schedule', request_method='DELETE',
             permission=OPERATE)
def delete_schedule(request):
    actions.delete(request, get_schedule(request))
    return HTTPNoContent()


@view_config(route_name='api.schedule.run', request_method='POST',
             renderer='json',
             permission=OPERATE)
def run_schedule(request):
    """Send one run now, answered as ``POST /api/jobs`` answers.  The body
    is empty, but declared JSON: another site cannot make a browser run
    it."""
    json_body(request, (), empty_ok=True)
    job = actions.run_now(request, get_schedule(request))
    request.response.status = 202
    set_location(request.response, location(request, 'api.job', id=job.id))
    return job_json(job)


def get_schedule(request):
    found = store.get(request.dbsession, request.matchdict['name'])
    if found is None:
        raise ApiError(404, 'no such periodic job',
                       {'name': request.matchdict['name']})
    return found
