"""The operations console in a real browser, with access control on:
headless Chromium, driven by selenium, against the app served by waitress
in this process and a real ``pceleryd INI --beat``.

As an operator would: filter the job list, retry a failed job from its
page and from the dashboard's bulk action; as a viewer: look, without a
button that acts, and be refused a POST.  Every page fits a desktop window
and a phone's width, long values included, and shows times readable in the
app's zone (Asia/Tokyo here), the exact time on hover.  With
MYAPP_SCREENSHOTS set, the last test saves a PNG of each page there.

The browser and the console check are conftest.py's fixtures; ``site`` is
this module's: its ini turns access control on.
"""
import datetime
import json
import re
import socket
import urllib.error
import urllib.request
import uuid

import pytest

from myapp import tokens
from myapp.models import Job
from myapp.models.types import utcnow

from .browser_support import (DESKTOP, JOB_PAGE, PHONE, RUNNING, SCREENSHOTS,
                              cut_off,
                              field, page_overflow, require_browser,
                              screenshot, served, set_viewport, shown,
                              sign_in, wait)
from .jobs_support import FINISHED, transaction_of, wait_until
from .support import RUN_QUEUE, write_ini

try:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
except ImportError:  # the site fixture skips (or fails) then
    pass

pytestmark = [pytest.mark.worker, pytest.mark.browser,
              pytest.mark.usefixtures('no_console_errors')]

ZONE = 'Asia/Tokyo'
#: Periodic jobs for /schedules: one in a zone of its own, one disabled.
#: None is due while the module runs (beat's sends would only add rows).
SCHEDULES = """
[celerybeat:nightly-sum]
task = myapp.tasks.xsum
type = crontab
schedule = {"minute": "30", "hour": "2"}
timezone = Europe/Paris
args = [[1, 2, 3]]

[celerybeat:hourly-add]
task = myapp.tasks.add
type = integer
schedule = 3600
args = [1, 2]

[celerybeat:paused-add]
task = myapp.tasks.add
type = integer
schedule = 60
args = [3, 4]
enabled = false
"""
#: What a time reads on the pages, and on hover.
READABLE = re.compile(r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d JST')
EXACT = re.compile(r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} JST '
                   r'\(Asia/Tokyo, UTC\+09:00\)')
RELATIVE = re.compile(r'just now|\d+ (s|min|h|d) ago')
#: Values no window is wide enough for: an id-like run with no break.
LONG_TOKEN = 'd41d8cd98f00b204e9800998ecf8427e' * 12
LONG_TRACEBACK = (
    'Traceback (most recent call last):\n'
    f'  File "/srv/myapp/{"deeply_nested_package/" * 12}tasks.py", '
    'line 42, in add\n'
    f'    return upstream.fetch("{LONG_TOKEN}")\n'
    f'ConnectionError: upstream {LONG_TOKEN} did not answer\n')


class Console:
    """The served site: its URL, its app (for the database) and a token
    per role, as (name, secret)."""

    def __init__(self, url, app, accounts):
        self.url, self.app, self.accounts = url, app, accounts


@pytest.fixture(scope='module')
def console(tmp_path_factory, initialize_db):
    require_browser()
    ini = initialize_db(write_ini(
        tmp_path_factory.mktemp('console'), app='auth.enabled = true',
        celery=f'timezone = {ZONE}', extra=SCHEDULES))
    with served(ini) as (url, app):
        yield Console(url, app, make_tokens(app))


@pytest.fixture(scope='module')
def site(console):
    """This module's site, with access control on (conftest's browser
    fixture runs on it)."""
    return console.url


def make_tokens(app):
    """A viewer's token and an operator's, as myapp_tokens makes them."""
    with transaction_of(app) as request:
        return {role: (f'{role}-console',
                       tokens.create(request.dbsession, f'{role}-console',
                                     role))
                for role in ('viewer', 'operator')}


def as_role(browser, console, role):
    sign_in(browser, console.url, *console.accounts[role])


# -- the API, as another program ------------------------------------------

def call(console, method, path, body=None, role='operator', headers=()):
    """(status, body) of a request with the role's token; ``body`` sent as
    JSON, unless it is bytes (a form)."""
    headers = dict(headers)
    if body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode()
        headers['Content-Type'] = 'application/json'
    if role is not None:
        headers['Authorization'] = f'Bearer {console.accounts[role][1]}'
    request = urllib.request.Request(console.url + path, data=body,
                                     method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def api_job(console, job_id):
    status, body = call(console, 'GET', f'/api/jobs/{job_id}')
    assert status == 200, body
    return json.loads(body)


def start_job(console, task, args):
    status, body = call(console, 'POST', '/api/jobs',
                        {'task': task, 'args': args})
    assert status == 202, body
    return json.loads(body)['id']


def finished(console, job_id):
    """The job, once the worker has finished it."""
    return wait_until(lambda: (lambda job: job['state'] in FINISHED and job)(
        api_job(console, job_id)), what=f'job {job_id} finished')


def put_job(console, state='FAILURE', age_seconds=60, **columns):
    """A job in the table as a worker would have left it; its id."""
    now = utcnow()
    columns = {'task_name': 'myapp.tasks.add', 'args': ['2', '3'],
               'kwargs': {}, 'options': {}, 'origin': 'http',
               'worker': 'celery@console', 'sent_at': now, **columns}
    if state in FINISHED:
        columns.setdefault('finished_at', now)
    if state == 'FAILURE':
        columns.setdefault('error_type', 'ConnectionError')
        columns.setdefault('error_message', 'the upstream did not answer')
    job_id = str(uuid.uuid4())
    with transaction_of(console.app) as request:
        request.dbsession.add(Job(
            id=job_id, state=state, created_at=now - datetime.timedelta(
                seconds=age_seconds), **columns))
    return job_id


@pytest.fixture(scope='module')
def long_jobs(console):
    """A job with a long call and result, and a failed one with a long
    error and traceback: {'result': id, 'traceback': id}."""
    return {
        'result': put_job(console, 'SUCCESS', args=[LONG_TOKEN, LONG_TOKEN],
                          result=LONG_TOKEN * 2),
        'traceback': put_job(console, args=[LONG_TOKEN, '-1'],
                             error_message=f'upstream {LONG_TOKEN} did '
                                           'not answer',
                             error_traceback=LONG_TRACEBACK),
    }


# -- what the pages show ----------------------------------------------------

def listed(browser):
    """The dashboard's rows: {job id: its state as shown}."""
    return {row.get_attribute('data-job-id'): row.find_element(
                By.CSS_SELECTOR, '[data-field="state"]').text
            for row in browser.find_elements(By.CSS_SELECTOR,
                                             'tr[data-job-id]')}


def filter_list(browser, console, task='', state=''):
    """Fill in the dashboard's filter and show; wait for its answer."""
    form = browser.find_element(By.ID, 'job-filter')
    box = form.find_element(By.NAME, 'task')
    box.clear()
    box.send_keys(task)
    Select(form.find_element(By.NAME, 'state')).select_by_visible_text(
        state or 'any')
    form.find_element(By.CSS_SELECTOR, 'button[type=submit]').click()
    wanted = [f'{name}={value}' for name, value in
              (('task', task), ('state', state)) if value]
    wait(browser, lambda b: all(part in b.current_url for part in wanted)
         and b.execute_script('return document.readyState;') == 'complete')


def job_page_loaded(browser, other_than=None):
    return JOB_PAGE.search(browser.current_url) \
        and not browser.current_url.endswith(f'/{other_than}') \
        and browser.find_elements(By.CSS_SELECTOR, 'article.job')


def time_of(element):
    """(text, title, datetime) of the <time> in an element."""
    time = element.find_element(By.TAG_NAME, 'time')
    return (time.text, time.get_attribute('title'),
            time.get_attribute('datetime'))


def assert_readable(shown_time, iso=None):
    text, title, moment = shown_time
    assert READABLE.fullmatch(text), shown_time
    assert EXACT.fullmatch(title), shown_time
    # What the hover says is the instant the datetime says, to the ms.
    assert title[:23] == moment[:10] + ' ' + moment[11:23], shown_time
    if iso is not None:
        assert moment == iso


# -- the tests --------------------------------------------------------------

def test_the_job_list_filters_by_state_and_by_task(console, browser):
    ids = {
        'add': start_job(console, 'myapp.tasks.add', [2, 3]),
        'failed add': start_job(console, 'myapp.tasks.add', ['two', 3]),
        'mul': start_job(console, 'myapp.tasks.mul', [6, 7]),
        'failed mul': start_job(console, 'myapp.tasks.mul', ['x', [1]]),
    }
    for job_id in ids.values():
        finished(console, job_id)
    as_role(browser, console, 'operator')
    browser.get(f'{console.url}/jobs')
    assert set(ids.values()) <= set(listed(browser))

    filter_list(browser, console, state='FAILURE')
    rows = listed(browser)
    assert set(rows.values()) == {'FAILURE'}
    assert {ids['failed add'], ids['failed mul']} <= set(rows)

    filter_list(browser, console, task='myapp.tasks.mul')
    assert listed(browser) == {ids['mul']: 'SUCCESS',
                               ids['failed mul']: 'FAILURE'}

    filter_list(browser, console, task='myapp.tasks.mul', state='FAILURE')
    assert listed(browser) == {ids['failed mul']: 'FAILURE'}


def test_a_failed_job_is_retried_from_its_page(console, browser):
    failed = put_job(console, args=['retried-', 'from its page'])
    as_role(browser, console, 'operator')
    browser.get(f'{console.url}/jobs/{failed}')
    field(browser, 'retry').find_element(By.TAG_NAME, 'button').click()
    wait(browser, lambda b: job_page_loaded(b, other_than=failed))
    retry = browser.current_url.rsplit('/', 1)[1]
    wait(browser, lambda b: shown(b, 'state') == 'SUCCESS')
    assert shown(browser, 'result') == '"retried-from its page"'
    links = field(browser, 'retry-of').find_elements(By.TAG_NAME, 'a')
    assert [a.get_attribute('href') for a in links] == \
        [f'{console.url}/jobs/{failed}']
    assert api_job(console, retry)['retry_of'] == failed
    # And back: the first job names its retry.
    links[0].click()
    wait(browser, lambda b: b.current_url.endswith(failed)
         and field(b, 'retried-as'))
    assert field(browser, 'retried-as').text == retry


def test_bulk_retry_from_the_dashboard(console, browser):
    marker = f'bulk-{uuid.uuid4().hex[:8]}'
    failed = {put_job(console, args=[marker, f'-{n}']) for n in range(3)}
    as_role(browser, console, 'operator')
    browser.get(f'{console.url}/jobs?state=FAILURE&q={marker}')
    assert set(listed(browser)) == failed
    browser.find_element(By.CSS_SELECTOR, '#bulk-retry button').click()
    wait(browser, lambda b: field(b, 'bulk-count'))
    assert 'This will retry 3 jobs' in shown(browser, 'bulk-count')
    browser.find_element(By.CSS_SELECTOR, '#bulk-confirm button').click()
    wait(browser, lambda b: field(b, 'bulk-result'))
    assert shown(browser, 'bulk-result') == '3 jobs retried.'

    def reloaded_until_retries_succeed(browser):
        browser.get(f'{console.url}/jobs?q={marker}')
        rows = listed(browser)
        return sorted(rows.values()) == ['FAILURE'] * 3 + ['SUCCESS'] * 3

    wait(browser, reloaded_until_retries_succeed, poll=0.3)
    retries = set(listed(browser)) - failed
    assert {api_job(console, each)['retry_of'] for each in retries} == failed


def test_a_viewer_sees_no_retry_button_and_cannot_retry(console, browser):
    failed = put_job(console)
    as_role(browser, console, 'viewer')
    browser.get(f'{console.url}/jobs/{failed}')
    assert shown(browser, 'state') == 'FAILURE'
    assert shown(browser, 'identity') == 'viewer-console (viewer)'
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-field=retry]')
    assert not browser.find_elements(By.CSS_SELECTOR, 'main form')
    browser.get(f'{console.url}/jobs?state=FAILURE')
    assert failed in listed(browser)
    assert not browser.find_elements(By.CSS_SELECTOR,
                                     'form.start-job, #bulk-retry, '
                                     '#bulk-revoke')

    # The viewer's own session sends the form anyway, token and all.
    cookies = '; '.join(f'{c["name"]}={c["value"]}'
                        for c in browser.get_cookies())
    csrf = browser.find_element(
        By.CSS_SELECTOR, 'form.signed-in input[name=csrf_token]'
    ).get_attribute('value')
    status, page = call(console, 'POST', f'/jobs/{failed}/retry',
                        f'csrf_token={csrf}'.encode(), role=None,
                        headers={'Cookie': cookies, 'Content-Type':
                                 'application/x-www-form-urlencoded'})
    assert status == 403 and 'Not allowed' in page
    status, answer = call(console, 'POST', f'/api/jobs/{failed}/retry', {},
                          role='viewer')
    assert status == 403
    assert json.loads(answer)['error'] == 'the role "viewer" may not do this'
    assert api_job(console, failed)['retried_as'] == []


def test_the_workers_page_shows_the_worker_and_rescues_a_stuck_job(
        console, browser):
    as_role(browser, console, 'operator')
    browser.get(f'{console.url}/workers')
    hostname = RUNNING['worker'].argv[
        RUNNING['worker'].argv.index('--hostname') + 1].replace(
        '%h', socket.gethostname())
    row = browser.find_element(By.CSS_SELECTOR,
                               f'tr[data-worker="{hostname}"]')
    assert row.find_element(By.CSS_SELECTOR, '[data-field=status]').text \
        == 'online'
    assert browser.find_element(By.CSS_SELECTOR, 'tr[data-queue="'
                                f'{RUN_QUEUE}"]').text.endswith(hostname)
    assert_readable(time_of(row))

    # A job left running by a worker that died.
    stuck = put_job(console, 'STARTED', args=['stuck-', 'rescued'],
                    worker='celery@died', started_at=utcnow())
    browser.get(f'{console.url}/workers')
    stuck_row = browser.find_element(By.CSS_SELECTOR,
                                     f'table.stuck tr[data-job-id="{stuck}"]')
    stuck_row.find_element(By.XPATH,
                           './/button[text()="Cancel and retry"]').click()
    wait(browser, lambda b: job_page_loaded(b, other_than=stuck))
    wait(browser, lambda b: shown(b, 'state') == 'SUCCESS')
    assert shown(browser, 'result') == '"stuck-rescued"'
    assert api_job(console, stuck)['state'] == 'REVOKED'
    browser.get(f'{console.url}/workers')
    assert not browser.find_elements(
        By.CSS_SELECTOR, f'table.stuck tr[data-job-id="{stuck}"]')

    # A viewer sees the same page, without the buttons.
    put_job(console, 'STARTED', worker='celery@died', started_at=utcnow())
    as_role(browser, console, 'viewer')
    browser.get(f'{console.url}/workers')
    assert browser.find_elements(By.CSS_SELECTOR, 'table.stuck tr[data-job-id]')
    assert not browser.find_elements(By.CSS_SELECTOR, 'main form')


@pytest.mark.parametrize('size', [DESKTOP, PHONE], ids=['1280', '390'])
def test_no_page_scrolls_sideways_and_nothing_is_cut(console, browser,
                                                     long_jobs, size):
    as_role(browser, console, 'operator')
    set_viewport(browser, *size)
    try:
        assert browser.execute_script('return window.innerWidth;') == size[0]
        for path, whole in (
                ('/jobs', '.jobs td.call'),
                (f'/jobs/{long_jobs["result"]}',
                 '.job-details dd, [data-field=result]'),
                (f'/jobs/{long_jobs["traceback"]}',
                 '.job-details dd, [data-field=traceback], '
                 '[data-field=error-message]'),
                ('/schedules', 'main > p, main > h1'),
                ('/schedules/nightly-sum', '.job-details dd'),
                ('/workers', 'main > p, main h2'),
                ('/', 'main > p'), ('/login', 'main > p')):
            browser.get(console.url + path)
            assert page_overflow(browser) <= 0, (size, path)
            assert cut_off(browser, whole) == [], (size, path)
        # The list: whole values wrap on a phone (cards); on a desktop
        # the result is cut to one line, whole in its title.
        browser.get(f'{console.url}/jobs')
        row = browser.find_element(
            By.CSS_SELECTOR, f'tr[data-job-id="{long_jobs["result"]}"]')
        outcome = row.find_element(By.CSS_SELECTOR, '[data-field=outcome]')
        assert outcome.get_attribute('title') == \
            api_job(console, long_jobs['result'])['result_preview']
        cards = row.value_of_css_property('display') == 'block'
        assert cards == (size == PHONE)
        assert cut_off(browser, '.jobs td') == []
    finally:
        set_viewport(browser, *DESKTOP)


def test_times_read_in_the_zone_with_the_exact_time_on_hover(console,
                                                             browser):
    as_role(browser, console, 'operator')
    # 1. The list: each row's creation, as the API has it.
    browser.get(f'{console.url}/jobs')
    status, body = call(console, 'GET', '/api/jobs')
    assert status == 200, body
    created = {job['id']: job['created_at']
               for job in json.loads(body)['jobs']}
    rows = browser.find_elements(By.CSS_SELECTOR, 'tr[data-job-id]')
    assert rows
    for row in rows:
        cell = row.find_element(By.CSS_SELECTOR, 'td.when')
        assert_readable(time_of(cell),
                        created[row.get_attribute('data-job-id')])
        assert RELATIVE.fullmatch(
            cell.find_element(By.CLASS_NAME, 'relative').text)

    # 2. "N s ago" counts on without a reload.
    recent = put_job(console, 'SUCCESS', age_seconds=3, result='23')
    browser.get(f'{console.url}/jobs')
    browser.execute_script('window.notReloaded = true;')
    ago = browser.find_element(
        By.CSS_SELECTOR, f'tr[data-job-id="{recent}"] .relative')
    first = int(re.fullmatch(r'(\d+) s ago', ago.text).group(1))
    wait(browser, lambda b: int(ago.text.split()[0]) >= first + 2)
    assert browser.execute_script('return window.notReloaded === true;')

    # 3. A time the live updates bring reads as the server writes it.
    job_id = start_job(console, 'myapp.tasks.slow_add', [1, 2, 2])
    browser.get(f'{console.url}/jobs/{job_id}')
    assert shown(browser, 'state') != 'SUCCESS'  # (it takes 2 s)
    wait(browser, lambda b: shown(b, 'state') == 'SUCCESS', poll=0.2)
    wait(browser, lambda b: b.find_elements(
        By.CSS_SELECTOR, '[data-field=finished_at] time'))
    job = api_job(console, job_id)
    live = time_of(field(browser, 'finished_at'))
    assert_readable(live, job['finished_at'])
    browser.refresh()
    assert time_of(field(browser, 'finished_at')) == live
    assert_readable(time_of(field(browser, 'started_at')), job['started_at'])

    # 4. A periodic job's times are in its own zone.
    browser.get(f'{console.url}/schedules')
    paris = time_of(browser.find_element(
        By.CSS_SELECTOR, 'tr[data-schedule="nightly-sum"] '
                         '[data-field=next_run_at]'))
    assert re.fullmatch(r'\d{4}-\d\d-\d\d 02:30:00 CES?T', paris[0]), paris
    assert re.fullmatch(r'.* \(Europe/Paris, UTC\+0[12]:00\)', paris[1])
    assert_readable(time_of(browser.find_element(
        By.CSS_SELECTOR, 'tr[data-schedule="hourly-add"] '
                         '[data-field=next_run_at]')))


@pytest.mark.skipif(not SCREENSHOTS, reason='MYAPP_SCREENSHOTS is not set: '
                                            'no screenshots taken')
def test_screenshots_of_each_page(console, browser):
    """docs/screenshots: MYAPP_SCREENSHOTS=docs/screenshots (README)."""
    failed = start_job(console, 'myapp.tasks.xsum', [[1, 'two', 3]])
    finished(console, failed)
    browser.delete_all_cookies()
    screenshot(browser, f'{console.url}/login', 'login')
    as_role(browser, console, 'operator')
    screenshot(browser, f'{console.url}/jobs', 'jobs')
    screenshot(browser, f'{console.url}/jobs/{failed}', 'job')
    screenshot(browser, f'{console.url}/schedules', 'schedules')
    put_job(console, 'PROGRESS', worker='celery@died', started_at=utcnow())
    screenshot(browser, f'{console.url}/workers', 'workers')
