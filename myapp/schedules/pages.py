"""The periodic job pages: list, add, change, switch on and off, run now,
delete.

``/schedules`` lists every periodic job with a form to add one and, per
job, buttons to enable or disable it, run it now and (made over HTTP)
delete it; ``/schedules/{name}`` shows one, with the form to change it.
Plain HTML forms, each with a CSRF token: no JavaScript needed.

The forms are read as the API's bodies would be (JSON fields by the jobs
dashboard's rules, :func:`myapp.jobs.inputs.json_field`) and acted on by
:mod:`.actions`, as over the API; a refusal is the API's error, shown on the
page with the form as it was typed, and changes nothing.
"""
from pyramid.csrf import check_csrf_token
from pyramid.httpexceptions import HTTPNotFound
from pyramid.view import view_config

from ..celery_integration.schedules import EXAMPLES, SCHEDULE_TYPES
from ..jobs.errors import ApiError
from ..jobs.inputs import check_body_size, json_field
from ..jobs.presentation import redirect, startable_tasks
from ..security import OPERATE
from . import actions, store
from .presentation import form_values, schedule_json

LIST_PAGE = 'myapp:templates/schedules.jinja2'
SCHEDULE_PAGE = 'myapp:templates/schedule.jinja2'
#: The add form as it first shows: enabled.
NEW_FORM = {'enabled': 'on'}


@view_config(route_name='schedules', request_method='GET',
             renderer=LIST_PAGE)
def schedules_page(request):
    return list_values(request)


@view_config(route_name='schedules', request_method='POST',
             renderer=LIST_PAGE,
             permission=OPERATE)
def add_from_form(request):
    check_csrf_token(request)
    try:
        actions.create(request, request.POST.get('name', '').strip(),
                       definition_of_form(request))
    except ApiError as exc:
        return refused(request, exc, list_values(
            request, form=request.POST, error=exc, failed='Not added'))
    return redirect(request, 'schedules')


@view_config(route_name='schedule', request_method='GET',
             renderer=SCHEDULE_PAGE)
def schedule_page(request):
    return schedule_values(request, find_schedule(request))


@view_config(route_name='schedule', request_method='POST',
             renderer=SCHEDULE_PAGE,
             permission=OPERATE)
def change_from_form(request):
    check_csrf_token(request)
    job = find_schedule(request)
    try:
        actions.change(request, job, definition_of_form(request))
    except ApiError as exc:
        return refused(request, exc, schedule_values(
            request, job, form=request.POST, error=exc,
            failed='Not changed'))
    return redirect(request, 'schedule', name=job.name)


@view_config(route_name='schedule.enabled', request_method='POST',
             renderer=LIST_PAGE, permission=OPERATE)
def enable_from_form(request):
    """``enabled=true`` or ``false``: said, not toggled, so that a form
    sent twice does not switch it back."""
    def enable(job):
        actions.change(request, job,
                       {'enabled': request.POST.get('enabled') == 'true'})
        return redirect(request, 'schedules')
    return list_button(request, enable, failed='Not changed')


@view_config(route_name='schedule.run', request_method='POST',
             renderer=LIST_PAGE, permission=OPERATE)
def run_from_form(request):
    """Run it now, and show the job it started."""
    def run(job):
        started = actions.run_now(request, job)
        return redirect(request, 'job', id=started.id)
    return list_button(request, run, failed='Not run')


@view_config(route_name='schedule.delete', request_method='POST',
             renderer=LIST_PAGE, permission=OPERATE)
def delete_from_form(request):
    def delete(job):
        actions.delete(request, job)
        return redirect(request, 'schedules')
    return list_button(request, delete, failed='Not deleted')


def list_button(request, act, failed):
    """A button of a periodic job: ``act(job)`` after the CSRF check; a
    refusal is shown on the list, headed ``failed``, and changes nothing."""
    check_csrf_token(request)
    job = find_schedule(request)
    try:
        return act(job)
    except ApiError as exc:
        return refused(request, exc, list_values(
            request, error=exc, failed=failed))


def definition_of_form(request):
    """The add and edit forms' fields as an API body holds them: JSON
    fields parsed, an empty time zone for the app's, the checkbox as
    true or false."""
    check_body_size(request)
    form = request.POST
    return {
        'task': form.get('task', ''),
        'type': form.get('type', ''),
        'schedule': json_field(form, 'schedule', empty=None),
        'args': json_field(form, 'args', empty=[]),
        'kwargs': json_field(form, 'kwargs', empty={}),
        'options': json_field(form, 'options', empty={}),
        'timezone': form.get('timezone', '').strip() or None,
        'enabled': 'enabled' in form,
    }


def refused(request, exc, values):
    """The page again, with the error and its status; whatever happened
    before the refusal is not committed."""
    request.response.status = exc.status
    request.tm.doom()
    return values


def list_values(request, form=None, error=None, failed=None):
    dbsession = request.dbsession
    return dict(form_choices(request),
                schedules=[schedule_json(dbsession, job)
                           for job in store.all_jobs(dbsession)],
                form=form or NEW_FORM, error=error, failed=failed,
                # The error is the add form's, shown beside it.
                adding=form is not None,
                schedules_api_url=request.route_url('api.schedules'))


def schedule_values(request, job, form=None, error=None, failed=None):
    return dict(form_choices(request),
                schedule=schedule_json(request.dbsession, job),
                form=form or form_values(job), error=error, failed=failed,
                schedule_api_url=request.route_url('api.schedule',
                                                   name=job.name))


def form_choices(request):
    """What the forms offer: the exposed tasks, the schedule types and an
    example of each."""
    return {'tasks': startable_tasks(request.registry),
            'types': SCHEDULE_TYPES, 'examples': EXAMPLES}


def find_schedule(request):
    job = store.get(request.dbsession, request.matchdict['name'])
    if job is None:
        raise HTTPNotFound()
    return job
