"""The periodic job pages over HTTP (webtest): the list and its add form,
enable/disable, run now and delete buttons, the page of one job and its
edit form; CSRF, errors shown on the page with the form as typed, and
that a refused form changes and sends nothing.

No worker or beat runs here (the broker is kombu's in-memory one).
"""
import pytest
import webtest

from myapp.schedules import store

from .jobs_support import all_jobs, load_job, transaction_of

DAILY = {'name': 'daily', 'task': 'myapp.tasks.add', 'args': '[5, 10]',
         'kwargs': '', 'type': 'crontab',
         'schedule': '{"minute": "0", "hour": "8"}',
         'timezone': 'Europe/Paris', 'options': ''}


@pytest.fixture
def pages(schedules_app):
    return webtest.TestApp(schedules_app)


def stored(app):
    """{name: row} of the table, as committed."""
    with transaction_of(app) as request:
        rows = store.all_jobs(request.dbsession)
        request.dbsession.expunge_all()
        return {row.name: row for row in rows}


def definitions(app):
    return {name: (row.task, row.args, row.kwargs, row.type, row.schedule,
                   row.timezone, row.enabled, row.options)
            for name, row in stored(app).items()}


def add_form(pages, enabled=True, **fields):
    form = pages.get('/schedules').forms['add-schedule']
    for name, value in dict(DAILY, **fields).items():
        form[name] = value
    form['enabled'] = enabled
    return form


def add(pages, **fields):
    return add_form(pages, **fields).submit(status=303)


def text(element):
    return ' '.join(element.get_text().split())


def row(page, name):
    return page.html.find('tr', attrs={'data-schedule': name})


def csrf_token(pages):
    return pages.get('/schedules').forms['add-schedule']['csrf_token'].value


# -- the list ------------------------------------------------------------

def test_the_list_shows_each_job_in_its_own_zone(pages):
    add(pages)
    page = pages.get('/schedules', status=200)
    daily, tick = row(page, 'daily'), row(page, 'tick')
    assert 'at 08:00 every day, Europe/Paris' in text(daily)
    next_run = daily.find(attrs={'data-field': 'next_run_at'}).time
    assert next_run['datetime'][11:23] == '08:00:00.000'  # Paris time
    assert next_run['datetime'][23:] in ('+01:00', '+02:00')
    assert 'every minute' in text(tick)
    assert tick.find(attrs={'data-field': 'next_run_at'}).time[
        'datetime'].endswith('+09:00')  # the app's zone
    assert tick.find(class_='source')['title'] == \
        'defined in the ini section [celerybeat:tick]'
    assert 'myapp.tasks.add' in text(tick) and '[1, 2]' in text(tick)


def test_each_row_has_its_buttons_and_only_api_jobs_delete(pages):
    add(pages)
    forms = pages.get('/schedules').forms
    for name in ('daily', 'tick'):
        assert forms[f'enabled-{name}']['enabled'].value == 'false'
        assert forms[f'enabled-{name}']['csrf_token'].value
        assert forms[f'run-{name}']['csrf_token'].value
    assert forms['delete-daily']['csrf_token'].value
    assert 'delete-tick' not in forms


def test_the_add_form_offers_the_exposed_tasks_and_the_types(pages):
    page = pages.get('/schedules')
    form = page.html.find('form', id='add-schedule')
    tasks = [option['value'] for option in
             form.find('select', id='task').find_all('option')]
    assert tasks == [task['name'] for task in
                     pages.get('/api/tasks').json['tasks']]
    assert 'myapp.jobs.tasks.purge_history' not in tasks
    types = [option['value'] for option in
             form.find('select', id='type').find_all('option')]
    assert set(types) == {'crontab', 'timedelta', 'integer', 'solar',
                          'clocked'}
    assert form.find('input', id='enabled').has_attr('checked')


# -- adding ----------------------------------------------------------------

def test_the_add_form_stores_the_job(pages):
    response = add(pages, kwargs='{}', options='{"queue": "reports"}')
    assert response.location == '/schedules'  # not from Host
    assert definitions(pages.app)['daily'] == (
        'myapp.tasks.add', [5, 10], {}, 'crontab',
        {'minute': '0', 'hour': '8'}, 'Europe/Paris', True,
        {'queue': 'reports'})
    assert stored(pages.app)['daily'].source == 'api'
    page = response.follow(status=200)
    assert row(page, 'daily') is not None
    assert pages.get('/api/schedules/daily').json['schedule'] == \
        'at 08:00 every day, Europe/Paris'


def test_an_unchecked_box_and_an_empty_zone_are_disabled_and_the_apps(
        pages):
    add(pages, enabled=False, timezone='', type='integer', schedule='30')
    job = stored(pages.app)['daily']
    assert (job.enabled, job.timezone, job.schedule) == (False, None, 30)
    assert text(row(pages.get('/schedules'), 'daily').find(
        attrs={'data-field': 'next_run_at'})) == 'disabled'


@pytest.mark.parametrize('fields, status, error', [
    ({'schedule': '{"minute": "61"}'}, 400, 'invalid "schedule"'),
    ({'schedule': '{"minute": '}, 400, 'invalid "schedule"'),
    ({'schedule': ''}, 400, 'invalid "schedule"'),
    ({'timezone': 'Europe/Pariss'}, 400, 'invalid "timezone"'),
    ({'args': '[1]'}, 400, 'invalid "args"'),
    ({'args': '{"x": 1}'}, 400, 'invalid "args"'),
    ({'kwargs': '[]'}, 400, 'invalid "kwargs"'),
    ({'options': '{"task_id": "x"}'}, 400, 'invalid "options"'),
    ({'type': 'integer'}, 400, 'invalid "schedule"'),
    ({'name': 'with space'}, 400, 'invalid "name"'),
    ({'name': ''}, 400, 'invalid "name"'),
    ({'name': 'tick'}, 409, 'a periodic job named "tick" already exists'),
])
def test_a_refused_form_shows_the_error_and_keeps_what_was_typed(
        pages, published, fields, status, error):
    before = definitions(pages.app)
    page = add_form(pages, **fields).submit(status=status)
    assert text(page.html.find(role='alert')).startswith(
        f'Not added: {error}')
    form = page.forms['add-schedule']
    typed = dict(DAILY, **fields)
    for name in ('name', 'args', 'kwargs', 'schedule', 'timezone',
                 'options', 'type'):
        assert form[name].value == typed[name], name
    assert form['enabled'].checked
    assert definitions(pages.app) == before
    assert published == []


def test_a_task_that_is_not_exposed_is_refused(pages):
    """Not in the select, but a form can be sent by hand."""
    fields = dict(DAILY, task='myapp.jobs.tasks.purge_history', args='',
                  kwargs='{"older_than_days": 1}',
                  csrf_token=csrf_token(pages))
    page = pages.post('/schedules', fields, status=400)
    alert = text(page.html.find(role='alert'))
    assert alert.startswith('Not added: invalid "task"')
    assert 'cannot be started over HTTP' in alert
    assert 'myapp.tasks.add' in alert  # those that can
    # Kept as typed, though the select does not offer it.
    assert page.forms['add-schedule']['task'].value == \
        'myapp.jobs.tasks.purge_history'
    assert 'daily' not in stored(pages.app)


def test_the_form_reports_what_the_api_reports(pages):
    body = {'name': 'daily', 'task': 'myapp.tasks.add', 'args': [5, 10],
            'type': 'crontab', 'schedule': {'minute': '0', 'hour': '8'},
            'timezone': 'Europe/Pariss'}
    api_error = pages.post_json('/api/schedules', body, status=400).json
    page = add_form(pages, timezone='Europe/Pariss').submit(status=400)
    assert text(page.html.find(role='alert')) == \
        f'Not added: {api_error["error"]} {api_error["detail"]}'


@pytest.mark.parametrize('path', ['/schedules', '/schedules/tick',
                                  '/schedules/tick/enabled',
                                  '/schedules/tick/run',
                                  '/schedules/tick/delete'])
@pytest.mark.parametrize('token', [None, 'not-the-token'])
def test_a_form_without_its_csrf_token_is_refused(pages, published, path,
                                                  token):
    pages.get('/schedules')  # a session, with its token
    before = definitions(pages.app)
    fields = dict(DAILY, enabled='false')
    if token is not None:
        fields['csrf_token'] = token
    refused = pages.post(path, fields, status=400)
    assert 'Form refused' in refused.text
    assert definitions(pages.app) == before
    assert all_jobs(pages.app) == [] and published == []


# -- enable, disable, run, delete -------------------------------------------

def test_disable_and_enable_an_ini_job(pages):
    response = pages.get('/schedules').forms['enabled-tick'].submit(
        status=303)
    assert response.location == '/schedules'
    assert stored(pages.app)['tick'].enabled is False
    page = response.follow()
    assert text(row(page, 'tick').find(
        attrs={'data-field': 'next_run_at'})) == 'disabled'
    form = page.forms['enabled-tick']
    assert form['enabled'].value == 'true'
    assert text(page.html.find('form', id='enabled-tick').button) == \
        'Enable'
    form.submit(status=303)
    assert stored(pages.app)['tick'].enabled is True


def test_enabled_is_said_not_toggled(pages):
    """A form sent twice leaves it as it says."""
    fields = {'enabled': 'false', 'csrf_token': csrf_token(pages)}
    pages.post('/schedules/tick/enabled', fields, status=303)
    pages.post('/schedules/tick/enabled', fields, status=303)
    assert stored(pages.app)['tick'].enabled is False


def test_run_now_shows_the_job_it_started(pages, published):
    response = pages.get('/schedules').forms['run-tick'].submit(status=303)
    job_id = response.location.rsplit('/', 1)[1]
    assert response.location == f'/jobs/{job_id}'
    job = load_job(pages.app, job_id)
    assert (job.task_name, job.args, job.origin) == \
        ('myapp.tasks.add', [1, 2], 'beat:tick')
    assert published == [job_id]
    assert 'beat:tick' in response.follow(status=200).text
    # The list links the last run.
    last = row(pages.get('/schedules'), 'tick').find(
        'a', href=f'http://localhost/jobs/{job_id}')
    assert text(last) == 'PENDING'


def test_delete_a_job_made_here(pages):
    add(pages)
    response = pages.get('/schedules').forms['delete-daily'].submit(
        status=303)
    assert response.location == '/schedules'
    assert 'daily' not in stored(pages.app)
    assert row(response.follow(), 'daily') is None


def test_an_ini_job_cannot_be_deleted_and_the_page_says_where_it_is(pages):
    page = pages.post('/schedules/tick/delete',
                      {'csrf_token': csrf_token(pages)}, status=409)
    assert text(page.html.find(role='alert')).startswith(
        'Not deleted: defined in the ini section [celerybeat:tick]')
    assert 'tick' in stored(pages.app)
    assert row(page, 'tick') is not None


@pytest.mark.parametrize('path', ['/schedules/nope', '/schedules/nope/run',
                                  '/schedules/nope/enabled',
                                  '/schedules/nope/delete'])
def test_no_such_job_is_404(pages, published, path):
    if path == '/schedules/nope':
        pages.get(path, status=404)
    pages.post(path, {'csrf_token': csrf_token(pages), 'enabled': 'true'},
               status=404)
    assert published == []


# -- the page of one job, and its edit form ---------------------------------

def test_the_edit_form_is_filled_with_the_job(pages):
    add(pages, options='{"queue": "reports"}')
    page = pages.get('/schedules/daily', status=200)
    assert 'at 08:00 every day, Europe/Paris' in page.text
    form = page.forms['change-schedule']
    assert (form['task'].value, form['type'].value, form['timezone'].value,
            form['enabled'].checked) == \
        ('myapp.tasks.add', 'crontab', 'Europe/Paris', True)
    assert (form['schedule'].value, form['args'].value, form['kwargs'].value,
            form['options'].value) == \
        ('{"minute": "0", "hour": "8"}', '[5, 10]', '{}',
         '{"queue": "reports"}')


def test_the_edit_form_changes_the_job(pages):
    add(pages)
    form = pages.get('/schedules/daily').forms['change-schedule']
    form['schedule'] = '{"minute": "30", "hour": "9"}'
    form['timezone'] = 'Asia/Tokyo'
    form['task'] = 'myapp.tasks.mul'
    form['enabled'] = False
    response = form.submit(status=303)
    assert response.location == '/schedules/daily'
    assert definitions(pages.app)['daily'] == (
        'myapp.tasks.mul', [5, 10], {}, 'crontab',
        {'minute': '30', 'hour': '9'}, 'Asia/Tokyo', False, {})
    assert 'at 09:30 every day, Asia/Tokyo' in response.follow().text


def test_a_refused_change_keeps_what_was_typed_and_changes_nothing(pages):
    add(pages)
    before = definitions(pages.app)
    form = pages.get('/schedules/daily').forms['change-schedule']
    form['schedule'] = '{"hour": "8", "minutes": "0"}'
    form['args'] = '[7, 7]'
    page = form.submit(status=400)
    assert text(page.html.find(role='alert')).startswith(
        'Not changed: invalid "schedule"')
    assert 'did you mean "minute"' in text(page.html.find(role='alert'))
    form = page.forms['change-schedule']
    assert (form['schedule'].value, form['args'].value) == \
        ('{"hour": "8", "minutes": "0"}', '[7, 7]')
    assert definitions(pages.app) == before
    # The page shows the job as it is, not as typed.
    assert 'at 08:00 every day, Europe/Paris' in page.text


def test_an_ini_job_has_no_edit_form_and_cannot_be_changed(pages):
    page = pages.get('/schedules/tick', status=200)
    assert 'change-schedule' not in page.forms
    assert '[celerybeat:tick]' in page.text
    assert {'enabled-tick', 'run-tick'} <= set(page.forms)
    before = definitions(pages.app)
    fields = dict(DAILY, csrf_token=csrf_token(pages), enabled='on')
    del fields['name']
    refused = pages.post('/schedules/tick', fields, status=409)
    assert text(refused.html.find(role='alert')).startswith(
        'Not changed: defined in the ini section [celerybeat:tick]')
    assert definitions(pages.app) == before
