"""Retrying jobs, one or many, and revoking many: over the API and on the
job page.  No worker: jobs are put in the table in the state a test needs,
and the broker is the in-memory one (a send is real, nothing runs it).
"""
import datetime

import pytest
from sqlalchemy import func, select

from myapp.models import Job
from myapp.models.types import utcnow

from .jobs_support import all_jobs, load_job, transaction_of

FAILED_ADD = {'task_name': 'myapp.tasks.add', 'args': [2, 3]}


def put_job(app, job_id, state='FAILURE', age_seconds=60, **columns):
    columns = {**FAILED_ADD, 'kwargs': {}, 'options': {}, 'origin': 'http',
               **columns}
    with transaction_of(app) as request:
        request.dbsession.add(Job(
            id=job_id, state=state, created_at=utcnow()
            - datetime.timedelta(seconds=age_seconds), **columns))
    return job_id


def count(app):
    with transaction_of(app) as request:
        return request.dbsession.scalar(select(func.count(Job.id)))


# -- one -------------------------------------------------------------------

def test_a_failed_job_is_started_again_as_a_new_job(api, published):
    eta = (utcnow() - datetime.timedelta(hours=1)).isoformat()
    put_job(api.app, 'failed-1', kwargs={}, options={
        'queue': 'celery', 'priority': 3, 'eta': eta, 'expires': eta})
    response = api.post_json('/api/jobs/failed-1/retry', {}, status=202)
    retry = response.json
    assert response.location.endswith(f'/api/jobs/{retry["id"]}')
    assert (retry['task'], retry['args'], retry['retry_of'], retry['origin'],
            retry['state']) == ('myapp.tasks.add', [2, 3], 'failed-1',
                                'http', 'PENDING')
    assert published == [retry['id']]
    # The same options, but for the first job's times: it runs now.
    stored = load_job(api.app, retry['id'])
    assert stored.options == {'queue': 'celery', 'priority': 3}
    original = api.get('/api/jobs/failed-1').json
    assert original['retried_as'] == [retry['id']]
    assert original['retry_of'] is None


def test_a_revoked_job_may_be_retried_too(api, published):
    put_job(api.app, 'revoked-1', state='REVOKED')
    api.post('/api/jobs/revoked-1/retry', status=202,
             content_type='application/json')
    assert len(published) == 1


@pytest.mark.parametrize('state', ['SUCCESS', 'PENDING', 'STARTED'])
def test_only_failed_and_revoked_jobs_are_retried(api, published, state):
    put_job(api.app, 'job-1', state=state)
    problem = api.post_json('/api/jobs/job-1/retry', {}, status=409).json
    assert problem == {'error': 'only a failed or revoked job can be '
                                'retried', 'detail': {'state': state}}
    assert published == [] and count(api.app) == 1


def test_a_task_http_may_not_start_is_not_retried(api, published):
    put_job(api.app, 'purge-1', task_name='myapp.jobs.tasks.purge_history',
            args=[], kwargs={'older_than_days': 30})
    problem = api.post_json('/api/jobs/purge-1/retry', {}, status=400).json
    assert 'cannot be started over HTTP' in problem['error']
    assert published == [] and count(api.app) == 1


def test_retrying_a_job_that_is_not_there_is_404(api, published):
    api.post_json('/api/jobs/nope/retry', {}, status=404)
    api.post('/api/jobs/nope/retry', 'x', content_type='text/plain',
             status=415)
    assert published == []


# -- many ------------------------------------------------------------------

def test_retry_by_ids_skips_what_cannot_be_retried(api, published):
    put_job(api.app, 'failed-1')
    put_job(api.app, 'done-1', state='SUCCESS')
    answer = api.post_json('/api/jobs/retry', {
        'ids': ['failed-1', 'done-1', 'missing', 'failed-1']},
        status=202).json
    assert answer['matched'] == 2
    assert [each['id'] for each in answer['retried']] == ['failed-1']
    assert answer['skipped'] == [{
        'id': 'done-1',
        'reason': 'only a failed or revoked job can be retried'}]
    assert answer['next'] is None
    assert published == [answer['retried'][0]['retry']]


def test_retry_by_filter_goes_page_by_page(api, published):
    for number in range(3):
        put_job(api.app, f'failed-{number}', age_seconds=100 - number)
    put_job(api.app, 'other', task_name='myapp.tasks.mul', age_seconds=10)
    first = api.post_json('/api/jobs/retry', {
        'task': 'myapp.tasks.add', 'state': 'FAILURE', 'limit': 2},
        status=202).json
    # Newest first; "next" continues after them.
    assert [each['id'] for each in first['retried']] == ['failed-2',
                                                         'failed-1']
    rest = api.post_json('/api/jobs/retry', {
        'task': 'myapp.tasks.add', 'state': 'FAILURE', 'limit': 2,
        'before': first['next']}, status=202).json
    assert [each['id'] for each in rest['retried']] == ['failed-0']
    assert rest['next'] is None
    assert len(published) == 3


def test_revoke_by_filter_revokes_what_has_not_finished(api, published,
                                                       broadcasts):
    put_job(api.app, 'queued-1', state='PENDING')
    put_job(api.app, 'queued-2', state='PENDING')
    put_job(api.app, 'done-1', state='SUCCESS')
    answer = api.post_json('/api/jobs/revoke', {'ids': [
        'queued-1', 'queued-2', 'done-1'], 'terminate': True},
        status=202).json
    assert sorted(answer['revoked']) == ['queued-1', 'queued-2']
    assert answer['skipped'] == [{'id': 'done-1',
                                  'reason': 'the job has already finished'}]
    assert {job.id: job.state for job in all_jobs(api.app)} == {
        'queued-1': 'REVOKED', 'queued-2': 'REVOKED', 'done-1': 'SUCCESS'}
    assert sorted(broadcasts) == [('queued-1', {'terminate': True}),
                                  ('queued-2', {'terminate': True})]


@pytest.mark.parametrize('path, body, field', [
    ('/api/jobs/retry', {}, None),
    ('/api/jobs/retry', {'ids': ['a'], 'state': 'FAILURE'}, None),
    ('/api/jobs/retry', {'ids': []}, 'ids'),
    ('/api/jobs/retry', {'ids': ['a'] * 101}, 'ids'),
    ('/api/jobs/retry', {'ids': ['a\x00']}, 'ids'),
    ('/api/jobs/retry', {'state': 'FAILURE', 'limit': 0}, 'limit'),
    ('/api/jobs/retry', {'state': 'FAILURE', 'limit': 101}, 'limit'),
    ('/api/jobs/retry', {'state': 'FAILURE', 'limit': True}, 'limit'),
    ('/api/jobs/retry', {'state': 'DONE'}, 'state'),
    ('/api/jobs/retry', {'task': 7}, 'task'),
    ('/api/jobs/retry', {'before': 'x'}, 'before'),
    ('/api/jobs/retry', {'state': 'FAILURE', 'terminate': True}, None),
    ('/api/jobs/revoke', {'state': 'PENDING', 'terminate': 'yes'},
     'terminate'),
])
def test_a_bulk_request_that_says_no_jobs_clearly_is_400(
        api, published, broadcasts, path, body, field):
    put_job(api.app, 'failed-1')
    put_job(api.app, 'queued-1', state='PENDING')
    problem = api.post_json(path, body, status=400).json
    if field is not None:
        assert problem['error'] == f'invalid "{field}"'
    assert published == [] and broadcasts == [] and count(api.app) == 2


# -- the job page ------------------------------------------------------------

def test_the_job_page_retries_and_links_both_ways(api, published):
    put_job(api.app, 'failed-1')
    page = api.get('/jobs/failed-1')
    retry_form = next(f for f in page.forms.values()
                      if f.action.endswith('/jobs/failed-1/retry'))
    landed = retry_form.submit(status=303).follow()
    assert 'Retry of' in landed.text and 'failed-1' in landed.text
    assert 'Retried as' in api.get('/jobs/failed-1').text
    assert len(published) == 1


def test_a_finished_job_that_succeeded_has_no_retry_button(api):
    put_job(api.app, 'done-1', state='SUCCESS')
    page = api.get('/jobs/done-1')
    assert not any(f.action.endswith('/retry') for f in page.forms.values())


def test_the_job_page_shows_the_chain_of_retries_and_the_traceback(api):
    put_job(api.app, 'first', error_type='ZeroDivisionError',
            error_message='division by zero',
            error_traceback='Traceback (most recent call last):\n'
                            '  File "tasks.py", line 3, in div\n'
                            'ZeroDivisionError: division by zero')
    put_job(api.app, 'second', retry_of='first')
    put_job(api.app, 'third', retry_of='second', state='PENDING')
    page = api.get('/jobs/third')
    chain = page.html.find(attrs={'data-field': 'retry-of'})
    assert [a['href'].rsplit('/', 1)[1] for a in chain.find_all('a')] == \
        ['first', 'second']
    first = api.get('/jobs/first')
    assert 'line 3, in div' in first.html.find(
        attrs={'data-field': 'traceback'}).text
    # The API keeps it to itself.
    assert 'traceback' not in api.get('/api/jobs/first').json['error']
