"""The job pages over HTTP (webtest): the dashboard and its form, the job
page and its cancel button, seed 000's add(5, 5) page, CSRF, 404s, and the
session secret.

No worker runs here (the broker is kombu's in-memory one); the browser test,
tests/test_browser.py, runs the pages against a real worker.
"""
import configparser
import os

import pytest
import webtest
from bs4 import BeautifulSoup
from pyramid.paster import get_app

from myapp.celery_integration import StartupError, celery_app
from myapp.jobs import presentation
from myapp.jobs.inputs import MAX_BODY_BYTES
from myapp.jobs.values import PREVIEW_CHARS
from myapp.sessions import SECRET_VARIABLE, session_secret
from myapp.views.times import time_html as when

from .jobs_support import all_jobs, load_job, set_state
from .support import PROJECT, write_ini


@pytest.fixture
def pages(app):
    return webtest.TestApp(app)


def start_form(pages, task='myapp.tasks.add', args='[5, 10]', kwargs=''):
    form = pages.get('/jobs').forms[0]
    form['task'], form['args'], form['kwargs'] = task, args, kwargs
    return form


def start(pages, task='myapp.tasks.add', args='[5, 10]', kwargs=''):
    """Start a job with the dashboard's form; return its id."""
    response = start_form(pages, task, args, kwargs).submit(status=303)
    return response.location.rsplit('/', 1)[1]


def text(element):
    return ' '.join(element.get_text().split())


def field(page, name):
    return page.html.find(attrs={'data-field': name})


def csrf_token(pages):
    return pages.get('/jobs').forms[0]['csrf_token'].value


# -- the dashboard -----------------------------------------------------

def test_home_links_to_the_job_pages_and_keeps_its_content(pages):
    home = pages.get('/', status=200)
    assert 'Recent calculations' in home.text
    links = {a['href'] for a in home.html.find_all('a')}
    assert {'http://localhost/jobs', 'http://localhost/seed/add'} <= links


def test_the_dashboard_offers_the_exposed_tasks(pages):
    dashboard = pages.get('/jobs', status=200)
    options = [option['value'] for option in
               dashboard.html.find('select', id='task').find_all('option')]
    tasks = pages.get('/api/tasks').json['tasks']
    assert options == [task['name'] for task in tasks]
    assert 'myapp.tasks.slow_add(x: float, y: float, seconds: int = 10)' \
        in dashboard.text
    assert dashboard.forms[0]['csrf_token'].value


def test_the_dashboard_lists_the_20_newest_jobs_with_their_state(pages):
    ids = [pages.post_json('/api/jobs', {'task': 'myapp.tasks.add',
                                         'args': [n, n]}).json['id']
           for n in range(21)]
    set_state(pages.app, ids[-1], 'SUCCESS', result=40)
    rows = pages.get('/jobs').html.select('tr[data-job-id]')
    assert [row['data-job-id'] for row in rows] == ids[:0:-1]
    assert text(rows[0].find(attrs={'data-field': 'state'})) == 'SUCCESS'
    assert text(rows[0].find(attrs={'data-field': 'outcome'})) == '40'
    assert text(rows[1].find(attrs={'data-field': 'state'})) == 'PENDING'
    assert 'myapp.tasks.add(19, 19)' in text(rows[1])


def test_pages_show_a_preview_of_large_values(pages):
    numbers = list(range(1000))
    job_id = pages.post_json('/api/jobs', {'task': 'myapp.tasks.xsum',
                                           'args': [numbers]}).json['id']
    set_state(pages.app, job_id, 'SUCCESS', result={'sum': numbers})
    row = pages.get('/jobs').html.select_one(f'tr[data-job-id="{job_id}"]')
    outcome = text(row.find(attrs={'data-field': 'outcome'}))
    assert len(outcome) == PREVIEW_CHARS and outcome.endswith('…')
    call = text(row.find('code', string=lambda s: 'xsum' in (s or '')))
    assert call.startswith('myapp.tasks.xsum([0, 1, 2')
    assert call.endswith('…)') and len(call) < PREVIEW_CHARS + 30
    page = pages.get(f'/jobs/{job_id}')
    result = text(field(page, 'result'))
    assert len(result) == PREVIEW_CHARS and result.endswith('…')
    assert not field(page, 'result-whole').has_attr('hidden')
    assert field(page, 'result-whole').a['href'].endswith(
        f'/api/jobs/{job_id}')
    assert '999' not in page.text  # nothing past the preview


# -- starting a job from the form ----------------------------------------

def test_the_form_starts_the_job_and_shows_its_page(pages, published):
    response = start_form(pages, 'myapp.tasks.slow_add', '[2, 3]',
                          '{"seconds": 3}').submit(status=303)
    job_id = response.location.rsplit('/', 1)[1]
    assert response.location == f'/jobs/{job_id}'  # not from Host
    job = load_job(pages.app, job_id)
    assert (job.task_name, job.args, job.kwargs, job.origin) == \
        ('myapp.tasks.slow_add', [2, 3], {'seconds': 3}, 'http')
    assert published == [job_id]
    page = response.follow(status=200)
    assert 'myapp.tasks.slow_add(2, 3, seconds=3)' in page.text


@pytest.mark.parametrize('token', [None, 'not-the-token'])
def test_a_form_without_its_csrf_token_is_refused(pages, published, token):
    pages.get('/jobs')  # a session, with its token
    fields = {'task': 'myapp.tasks.add', 'args': '[1, 2]'}
    if token is not None:
        fields['csrf_token'] = token
    refused = pages.post('/jobs', fields, status=400)
    assert 'Form refused' in refused.text
    assert all_jobs(pages.app) == [] and published == []


@pytest.mark.parametrize('task, args, kwargs, error', [
    ('myapp.tasks.add', '[1', '', 'invalid "args"'),
    ('myapp.tasks.add', '[NaN, 1]', '', 'invalid "args"'),
    ('myapp.tasks.add', '{"x": 1}', '', 'invalid "args"'),
    ('myapp.tasks.add', '[1, 2]', '[]', 'invalid "kwargs"'),
    ('myapp.tasks.add', '[1]', '',
     'the arguments do not fit myapp.tasks.add(x, y)'),
    ('myapp.tasks.slow_add', '["2", 3]', '',
     'arguments of the wrong type for myapp.tasks.slow_add'),
    ('myapp.jobs.tasks.purge_history', '[0]', '',
     'task "myapp.jobs.tasks.purge_history" cannot be started over HTTP'),
    ('', '[1, 2]', '', 'invalid "task"'),
])
def test_bad_input_shows_the_form_again_with_the_apis_error(
        pages, published, task, args, kwargs, error):
    fields = {'task': task, 'args': args, 'kwargs': kwargs,
              'csrf_token': csrf_token(pages)}
    page = pages.post('/jobs', fields, status=400)
    assert text(page.html.find(role='alert')).startswith(
        f'Not started: {error}')
    form = page.forms[0]
    assert (form['args'].value, form['kwargs'].value) == (args, kwargs)
    assert all_jobs(pages.app) == [] and published == []


def test_a_form_larger_than_a_json_body_may_be_is_refused(pages, published):
    fields = {'task': 'myapp.tasks.xsum', 'csrf_token': csrf_token(pages),
              'args': f'[[{"1, " * MAX_BODY_BYTES}1]]'}
    page = pages.post('/jobs', fields, status=413)
    assert text(page.html.find(role='alert')).startswith(
        f'Not started: the body is larger than {MAX_BODY_BYTES} bytes')
    assert all_jobs(pages.app) == [] and published == []


def test_the_form_reports_what_the_api_reports(pages):
    """The same rules, the same words: the form's error is the API's."""
    api_error = pages.post_json('/api/jobs', {
        'task': 'myapp.tasks.slow_add', 'args': ['2', 3]}, status=400).json
    page = start_form(pages, 'myapp.tasks.slow_add', '["2", 3]').submit(
        status=400)
    assert text(page.html.find(role='alert')) == \
        f'Not started: {api_error["error"]} x: {api_error["detail"]["x"]}'


# -- the job page --------------------------------------------------------

def test_the_job_page_shows_a_queued_job(pages):
    job_id = start(pages)
    page = pages.get(f'/jobs/{job_id}', status=200)
    job = load_job(pages.app, job_id)
    assert text(field(page, 'state')) == 'PENDING'
    assert 'myapp.tasks.add(5, 10)' in page.text
    assert page.html.find('dt', string='Origin').find_next('dd').text == \
        'http'
    created = page.html.find('dt', string='Created').find_next('time')
    assert created['datetime'] == presentation.format_time(job.created_at)
    assert not field(page, 'progress').has_attr('value')  # indeterminate
    assert field(page, 'result-block').has_attr('hidden')
    cancel = field(page, 'cancel')
    assert cancel['action'] == f'http://localhost/jobs/{job_id}/cancel'
    assert cancel.find('input', attrs={'name': 'csrf_token'})['value']


def test_the_job_page_shows_the_progress(pages):
    job_id = start(pages, 'myapp.tasks.slow_add', '[2, 3]')
    set_state(pages.app, job_id, 'PROGRESS', progress_current=4,
              progress_total=10, progress_message='4s of 10s')
    page = pages.get(f'/jobs/{job_id}')
    bar = field(page, 'progress')
    assert (bar['value'], bar['max']) == ('4', '10')
    assert text(field(page, 'progress-message')) == '4s of 10s'
    assert text(field(page, 'state')) == 'PROGRESS'


def test_a_finished_job_shows_its_result_and_no_cancel_button(pages):
    job_id = start(pages, 'myapp.tasks.slow_add', '[2, 3]')
    set_state(pages.app, job_id, 'SUCCESS', result=5, progress_current=10,
              progress_total=10, progress_message='done')
    page = pages.get(f'/jobs/{job_id}')
    assert not field(page, 'result-block').has_attr('hidden')
    assert text(field(page, 'result')) == '5'
    assert field(page, 'progress')['value'] == '10'
    assert field(page, 'cancel') is None


def test_a_failed_job_shows_its_error(pages):
    job_id = start(pages, 'myapp.tasks.slow_add', '[2, 3]', '{"seconds": -1}')
    set_state(pages.app, job_id, 'FAILURE', error_type='ValueError',
              error_message='seconds=-1: from 0 to 3600')
    page = pages.get(f'/jobs/{job_id}')
    assert not field(page, 'error-block').has_attr('hidden')
    assert text(field(page, 'error-block')) == \
        'Error ValueError: seconds=-1: from 0 to 3600'
    assert field(page, 'result-block').has_attr('hidden')
    # A job that never reported progress shows no bar once it has finished.
    assert field(page, 'progress-block').has_attr('hidden')


def test_pages_show_times_as_the_when_filter_writes_them(pages):
    """Each time is the filter's (myapp/views/times.py), of the API's
    time (format_time) for it."""
    job_id = start(pages)
    created = pages.get(f'/api/jobs/{job_id}').json['created_at']
    for path in ('/jobs', f'/jobs/{job_id}'):
        shown = pages.get(path).html.find_all('time')
        assert created in [time['datetime'] for time in shown]
        for time in shown:
            rendered = BeautifulSoup(str(when(time['datetime'])),
                                     'html.parser').time
            assert time == rendered


def test_unknown_jobs_are_404_pages(pages):
    for job_id in ('no-such-job', 'x' * 100):
        page = pages.get(f'/jobs/{job_id}', status=404)
        assert 'Not found' in page.text
    pages.post('/jobs/no-such-job/cancel', {'csrf_token': csrf_token(pages)},
               status=404)


# -- cancelling ------------------------------------------------------------

def test_the_cancel_button_revokes_the_job(pages, broadcasts):
    job_id = start(pages, 'myapp.tasks.slow_add', '[2, 3]')
    page = pages.get(f'/jobs/{job_id}')
    response = page.forms[0].submit(status=303)
    assert response.location == f'/jobs/{job_id}'  # not from Host
    assert load_job(pages.app, job_id).state == 'REVOKED'
    # Cooperative: the job stops at its next progress report.
    assert broadcasts == [(job_id, {'terminate': False})]
    page = response.follow()
    assert text(field(page, 'state')) == 'REVOKED'
    assert field(page, 'cancel') is None


def test_cancel_without_the_csrf_token_is_refused(pages, broadcasts):
    job_id = start(pages)
    refused = pages.post(f'/jobs/{job_id}/cancel', {}, status=400)
    assert 'Form refused' in refused.text
    assert load_job(pages.app, job_id).state == 'PENDING'
    assert broadcasts == []


def test_cancelling_a_finished_job_says_so(pages, broadcasts):
    job_id = start(pages)
    cancel = pages.get(f'/jobs/{job_id}').forms[0]
    set_state(pages.app, job_id, 'SUCCESS', result=15)
    page = cancel.submit(status=409)
    assert 'It has already finished' in text(page.html.find(role='alert'))
    assert text(field(page, 'state')) == 'SUCCESS'
    assert broadcasts == []


# -- seed 000: add(5, 5) -------------------------------------------------

def test_the_seed_page_queues_add_and_shows_its_async_result(pages,
                                                              published):
    response = pages.get('/seed/add').forms[0].submit(status=303)
    task_id = response.location.rsplit('/', 1)[1]
    assert published == [task_id]
    assert load_job(pages.app, task_id).args == [5, 5]

    def shown():
        page = pages.get(f'/seed/add/{task_id}', status=200)
        terms = [text(dt) for dt in page.html.find_all('dt')]
        return dict(zip(terms, (text(dd) for dd in page.html('dd'))))

    assert shown() == {'Task id': task_id, 'State': 'PENDING',
                       'ready()': 'False'}
    celery_app.backend.store_result(task_id, 10, 'SUCCESS')  # a worker ran it
    assert shown() == {'Task id': task_id, 'State': 'SUCCESS',
                       'ready()': 'True', 'Result': '10'}


def test_the_seed_button_needs_its_csrf_token(pages, published):
    pages.get('/seed/add')
    pages.post('/seed/add', {}, status=400)
    assert published == [] and all_jobs(pages.app) == []


# -- the session secret --------------------------------------------------

def test_start_up_stops_without_a_session_secret(tmp_path, monkeypatch):
    monkeypatch.delenv(SECRET_VARIABLE, raising=False)
    with pytest.raises(StartupError) as info:
        get_app(write_ini(tmp_path, broker='memory', session_secret=None))
    assert str(info.value) == (
        'error: no session secret: set the environment variable '
        'MYAPP_SESSION_SECRET (or "session.secret" in [app:main])')


def test_the_environment_overrides_the_session_secret(monkeypatch):
    settings = {'session.secret': 'from the ini'}
    monkeypatch.delenv(SECRET_VARIABLE, raising=False)
    assert session_secret(settings) == 'from the ini'
    monkeypatch.setenv(SECRET_VARIABLE, 'from the environment')
    assert session_secret(settings) == 'from the environment'


def test_production_ini_leaves_the_session_secret_to_the_environment():
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(os.path.join(PROJECT, 'production.ini'))
    assert parser['app:main']['session.secret'] == ''


def test_the_session_cookie_is_https_only_where_the_ini_says():
    from pyramid import testing
    from pyramid.interfaces import ISessionFactory

    from myapp.sessions import includeme

    for secure in ('true', 'false'):
        with testing.testConfig(settings={'session.secret': 's',
                                          'session.secure': secure}) as config:
            includeme(config)
            factory = config.registry.getUtility(ISessionFactory)
        request = testing.DummyRequest()
        factory(request)['x'] = 1  # a changed session sets its cookie
        response = request.response
        for callback in request.response_callbacks:
            callback(request, response)
        cookie = response.headers['Set-Cookie'].lower()
        assert ('; secure' in cookie) == (secure == 'true')


# -- text that is not text -----------------------------------------------

@pytest.mark.parametrize('path', [
    '/jobs/a%00b', '/jobs/%ff', '/jobs/%ED%A0%80', '/jobs/%C0%80',
    '/jobs/%00/cancel', '/seed/add/a%00b', '/seed/add/%ff', '/%ff',
    '/static/%00', '/seed/add/' + 'x' * 100])
def test_a_path_that_is_not_text_is_a_404_page(pages, path):
    assert 'Not found' in pages.get(path, status=404).text


def test_an_address_with_a_query_that_is_not_text_is_400(pages):
    pages.get('/jobs?x=%ff', status=400)
    pages.get('/?%00', status=400)


@pytest.mark.parametrize('args', ['[1, "\\u0000"]',
                                  '["\\ud800"]', '[[[[[[[[[[[[[[[[[[[[[[[['
                                  '[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]'
                                  ']]]]]]]]]]'])
def test_form_args_that_a_job_cannot_carry_are_refused(pages, published,
                                                       args):
    fields = {'task': 'myapp.tasks.xsum', 'args': args,
              'csrf_token': csrf_token(pages)}
    page = pages.post('/jobs', fields, status=400)
    assert text(page.html.find(role='alert')).startswith(
        'Not started: invalid "args"')
    assert all_jobs(pages.app) == [] and published == []


@pytest.mark.parametrize('body, content_type', [
    (b'task=myapp.tasks.add&args=%5B1%2C2%5D&csrf_token=%ff',
     'application/x-www-form-urlencoded'),
    (b'task=myapp.tasks.add&args=%5B%22a%00%22%5D',
     'application/x-www-form-urlencoded'),
    (b'task=myapp.tasks.add&args=%5B1%2C2%5D\xff',
     'application/x-www-form-urlencoded'),
    (b'task=myapp.tasks.add&args=%5B1%2C2%5D',
     'application/x-www-form-urlencoded; charset=latin-1'),
    (b'garbage', 'multipart/form-data'),
    (b'--b\r\nContent-Disposition: form-data; name="args"\r\n\r\n[1, 2]\xff'
     b'\r\n--b--\r\n', 'multipart/form-data; boundary=b'),
    (b'--b\r\nContent-Disposition: form-data; name="args"\r\n'
     b'Content-Type: text/plain; charset=nope\r\n\r\n[1, 2]\r\n--b--\r\n',
     'multipart/form-data; boundary=b'),
])
@pytest.mark.parametrize('path', ['/jobs', '/jobs/some-job/cancel',
                                  '/seed/add'])
def test_a_form_that_is_not_utf8_text_is_400(pages, published, path, body,
                                             content_type):
    refused = pages.request(path, method='POST', body=body, status=400,
                            headers={'Content-Type': content_type})
    assert 'Form refused' not in refused.text  # before the CSRF check
    assert all_jobs(pages.app) == [] and published == []
