"""GET /api/schedules and /schedules: the ini's periodic jobs, visible.

The rest of the API and the pages: test_schedules_api.py,
test_schedule_pages.py."""
import datetime
import time

import pytest
import transaction
import webtest
from pyramid.paster import get_app

from myapp.models import Job, get_tm_session
from myapp.schedules.store import synchronise_ini

from .jobs_support import transaction_of
from .support import Worker, write_ini

TICK = """
[celerybeat:tick]
task = myapp.tasks.add
type = integer
schedule = 1
args = [1, 2]

[celerybeat:monthly]
task = myapp.tasks.xsum
type = crontab
schedule = {"minute": "0", "hour": "8", "day_of_month": "1"}
args = [[1, 2, 3]]
"""


@pytest.fixture
def scheduled(tmp_path, initialize_db):
    """(ini, app) with two periodic jobs, in the Asia/Tokyo zone, in the
    table as beat (and ``initialize_myapp_db``) put them there."""
    ini = initialize_db(write_ini(tmp_path, celery='timezone = Asia/Tokyo',
                                  extra=TICK))
    app = get_app(ini)
    with transaction_of(app) as request:
        synchronise_ini(request.dbsession, ini)
    return ini, app


def add_job(app, **columns):
    with transaction.manager:
        session = get_tm_session(app.registry['dbsession_factory'],
                                 transaction.manager)
        session.add(Job(task_name='myapp.tasks.add', args=[1, 2], kwargs={},
                        options={}, **columns))


def by_name(response):
    return {s['name']: s for s in response.json['schedules']}


def test_each_periodic_job_in_words_with_its_next_run(scheduled):
    ini, app = scheduled
    schedules = by_name(webtest.TestApp(app).get('/api/schedules'))
    monthly = schedules['monthly']
    assert monthly['task'] == 'myapp.tasks.xsum'
    assert monthly['args'] == [[1, 2, 3]]
    assert monthly['schedule'] == 'at 08:00 on day 1 of the month, Asia/Tokyo'
    assert monthly['timezone'] == 'Asia/Tokyo'
    # Shown in the configured zone: 08:00 in Tokyo on some 1st.
    assert monthly['next_run_at'].endswith('T08:00:00.000+09:00')
    assert monthly['next_run_at'][8:10] == '01'
    assert monthly['last_run'] is None
    assert schedules['tick']['schedule'] == 'every second'


def test_the_last_run_comes_from_the_job_history(scheduled):
    ini, app = scheduled
    sent = datetime.datetime(2026, 11, 1, 12, 0, tzinfo=datetime.timezone.utc)
    add_job(app, id='older', origin='beat:tick', state='SUCCESS',
            created_at=sent - datetime.timedelta(seconds=1))
    add_job(app, id='newest', origin='beat:tick', state='FAILURE',
            created_at=sent)
    add_job(app, id='by-hand', origin='shell', state='SUCCESS',
            created_at=sent + datetime.timedelta(hours=1))
    tick = by_name(webtest.TestApp(app).get('/api/schedules'))['tick']
    assert tick['last_run']['job'] == 'newest'
    assert tick['last_run']['state'] == 'FAILURE'
    assert tick['last_run']['sent_at'] == '2026-11-01T21:00:00.000+09:00'


def test_the_page_lists_them_without_javascript(scheduled):
    ini, app = scheduled
    page = webtest.TestApp(app).get('/schedules', status=200)
    assert 'at 08:00 on day 1 of the month, Asia/Tokyo' in page.text
    assert 'myapp.tasks.xsum' in page.text


@pytest.mark.worker
def test_beat_runs_land_in_the_job_history_with_their_schedule(scheduled):
    ini, app = scheduled
    with Worker(ini, '--beat'):
        client = webtest.TestApp(app)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            jobs = client.get('/api/jobs?task=myapp.tasks.add').json['jobs']
            done = [j for j in jobs if j['state'] == 'SUCCESS']
            if len(done) >= 2:
                break
            time.sleep(0.3)
        assert len(done) >= 2, jobs
        assert {j['origin'] for j in done} == {'beat:tick'}
        assert done[0]['result'] == 3
        tick = by_name(client.get('/api/schedules'))['tick']
        assert tick['last_run']['state'] in ('PENDING', 'STARTED', 'SUCCESS')
