"""Finding jobs: the list's filter (task, state, origin, worker, time range,
an id or a text in the arguments), over the API, on the dashboard with its
counts per state and its pages, and for bulk retries."""
import datetime

import pytest

from myapp.jobs import presentation
from myapp.models import Job
from myapp.models.types import utcnow

from .jobs_support import transaction_of

NOW = utcnow().replace(microsecond=0)


@pytest.fixture
def jobs(app):
    """Six jobs, an hour apart, the newest an hour ago."""
    rows = [
        ('a1', 'myapp.tasks.add', 'SUCCESS', 'http', 'celery@one', [1, 2]),
        ('a2', 'myapp.tasks.add', 'FAILURE', 'beat:nightly', 'celery@two',
         [3, 4]),
        ('m1', 'myapp.tasks.mul', 'FAILURE', 'http', 'celery@one',
         ['needle', 5]),
        ('x1', 'myapp.tasks.xsum', 'PENDING', 'task:a1', None, [[7, 8]]),
        ('a3', 'myapp.tasks.add', 'REVOKED', 'shell', None, [5, 6]),
        ('m2', 'myapp.tasks.mul', 'SUCCESS', 'beat:nightly', 'celery@two',
         [2, 2]),
    ]
    with transaction_of(app) as request:
        for hours, (job_id, task, state, origin, worker, args) in \
                enumerate(rows, start=1):
            request.dbsession.add(Job(
                id=job_id, task_name=task, state=state, origin=origin,
                worker=worker, args=args,
                kwargs={'note': 'haystack'} if job_id == 'a3' else {},
                options={}, created_at=NOW - datetime.timedelta(hours=hours)))
    return [row[0] for row in rows]


def listed(api, **query):
    return [job['id'] for job in api.get('/api/jobs', params=query,
                                         status=200).json['jobs']]


@pytest.mark.parametrize('query, expected', [
    ({}, ['a1', 'a2', 'm1', 'x1', 'a3', 'm2']),
    ({'task': 'myapp.tasks.add'}, ['a1', 'a2', 'a3']),
    ({'state': 'FAILURE'}, ['a2', 'm1']),
    ({'origin': 'beat:nightly'}, ['a2', 'm2']),
    ({'worker': 'celery@one'}, ['a1', 'm1']),
    ({'q': 'm1'}, ['m1']),                 # an id
    ({'q': 'needle'}, ['m1']),             # text in the arguments
    ({'q': 'haystack'}, ['a3']),           # ... and in the keywords
    ({'q': '%'}, []),                      # not a pattern
    ({'task': 'myapp.tasks.mul', 'state': 'SUCCESS'}, ['m2']),
])
def test_each_filter_narrows_the_list(api, jobs, query, expected):
    assert listed(api, **query) == expected


def test_a_time_range_is_from_after_until_before(api, jobs):
    after = (NOW - datetime.timedelta(hours=4)).isoformat()
    until = (NOW - datetime.timedelta(hours=1)).isoformat()
    # Created 4, 3 and 2 hours ago; the one of an hour ago is "until".
    assert listed(api, after=after, until=until) == ['a2', 'm1', 'x1']


def test_a_time_without_offset_is_read_in_the_apps_zone(api, jobs, app):
    from myapp.celery_integration import celery_app
    local = (NOW - datetime.timedelta(hours=2, minutes=30)).astimezone(
        celery_app.timezone).replace(tzinfo=None)
    assert listed(api, after=local.isoformat()) == ['a1', 'a2']


@pytest.mark.parametrize('query, field', [
    ({'state': 'DONE'}, 'state'), ({'after': 'yesterday'}, 'after'),
    ({'until': '2026-13-01'}, 'until'), ({'q': 'x' * 256}, 'q'),
    ({'origin': ''}, 'origin'), ({'worker': 'w' * 300}, 'worker'),
])
def test_a_filter_that_is_not_one_is_400(api, jobs, query, field):
    problem = api.get('/api/jobs', params=query, status=400).json
    assert problem['error'] == f'invalid "{field}"'


def test_bulk_retry_takes_the_same_filter(api, jobs, published):
    answer = api.post_json('/api/jobs/retry', {
        'origin': 'beat:nightly', 'state': 'FAILURE'}, status=202).json
    assert [each['id'] for each in answer['retried']] == ['a2']
    assert len(published) == 1


# -- the dashboard ---------------------------------------------------------

def rows(page):
    return [row['data-job-id'] for row in page.html.select('tr[data-job-id]')]


def test_the_dashboard_filters_counts_and_keeps_the_form(api, jobs):
    page = api.get('/jobs', params={'task': 'myapp.tasks.add', 'state': '',
                                    'origin': '', 'q': ''})
    assert rows(page) == ['a1', 'a2', 'a3']
    counts = page.html.find(attrs={'data-field': 'state-counts'}).text
    assert 'SUCCESS\n  1' in counts and 'FAILURE\n  1' in counts \
        and 'REVOKED\n  1' in counts and 'PENDING\n  0' in counts
    form = page.forms['job-filter']
    assert form['task'].value == 'myapp.tasks.add'
    # Live updates ask the API for the same jobs.
    api_url = page.html.select_one('table.jobs')['data-jobs-api']
    assert 'task=myapp.tasks.add' in api_url


def test_the_counts_stop_at_their_cap(api, jobs, monkeypatch):
    monkeypatch.setattr(presentation, 'COUNT_CAP', 1)
    counts = api.get('/jobs').html.find(
        attrs={'data-field': 'state-counts'}).text
    assert 'FAILURE\n  1+' in counts and 'PENDING\n  1' in counts


def test_the_dashboard_goes_page_by_page(api, jobs, monkeypatch):
    from myapp.jobs import pages
    monkeypatch.setattr(pages, 'RECENT_JOBS', 2)
    first = api.get('/jobs', params={'task': 'myapp.tasks.add'})
    assert rows(first) == ['a1', 'a2']
    older = api.get(first.html.find('a', rel='next')['href'])
    assert rows(older) == ['a3']
    assert older.html.find('a', rel='next') is None


def test_a_filter_that_is_not_one_shows_why(api, jobs):
    page = api.get('/jobs', params={'state': 'DONE'}, status=400)
    alert = page.html.find(attrs={'role': 'alert'}).text
    assert 'Not shown' in alert and 'invalid "state"' in alert
    assert rows(page) == []


# -- bulk buttons ------------------------------------------------------------

def test_bulk_retry_from_the_dashboard_asks_first_then_does_it(api, jobs,
                                                              published):
    page = api.get('/jobs', params={'state': 'FAILURE'})
    asked = page.forms['bulk-retry'].submit()
    count = asked.html.find(attrs={'data-field': 'bulk-count'}).text
    assert 'This will retry 2 jobs' in ' '.join(count.split())
    assert published == []  # nothing until confirmed
    done = asked.forms['bulk-confirm'].submit()
    result = done.html.find(attrs={'data-field': 'bulk-result'}).text
    assert '2 jobs retried' in ' '.join(result.split())
    assert len(published) == 2


def test_bulk_revoke_skips_what_has_finished_and_says_so(api, jobs,
                                                         broadcasts):
    page = api.get('/jobs', params={'task': 'myapp.tasks.xsum'})
    asked = page.forms['bulk-revoke'].submit()
    done = asked.forms['bulk-confirm'].submit()
    assert '1 job revoked' in ' '.join(done.html.find(
        attrs={'data-field': 'bulk-result'}).text.split())
    assert [job_id for job_id, _ in broadcasts] == ['x1']


def test_no_bulk_buttons_without_a_filter(api, jobs):
    forms = api.get('/jobs').forms
    assert 'bulk-retry' not in forms and 'bulk-revoke' not in forms


def test_a_bulk_form_without_its_csrf_token_does_nothing(api, jobs,
                                                        published):
    api.post('/jobs/retry', {'state': 'FAILURE', 'confirmed': 'yes'},
             status=400)
    assert published == []
