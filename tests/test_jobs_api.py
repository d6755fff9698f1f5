"""The jobs API over HTTP (webtest), against the app and a real kombu
in-memory broker: every status code and error, idempotency keys, revoke.

No worker runs here; tests/test_jobs_integration.py has them.
"""
import datetime
import itertools
import json

import pytest
import webtest
from pyramid.paster import get_app
from sqlalchemy import event

from myapp.celery_integration import TaskEnqueued
from myapp.jobs.actions import stored_idempotency_key
from myapp.jobs.inputs import MAX_BODY_BYTES
from myapp.jobs.values import MAX_JSON_DEPTH, PREVIEW_CHARS
from myapp.models import Job
from .jobs_support import (all_jobs, load_job, set_state, transaction_of,
                           wait_until)
from .support import write_ini

ADD = {'task': 'myapp.tasks.add', 'args': [5, 10], 'kwargs': {}}


def start(api, body=ADD, status=202, **kwargs):
    return api.post_json('/api/jobs', body, status=status, **kwargs)


def refused(api, body, status=400, **kwargs):
    """POST a bad request: a JSON error, and nothing recorded or queued."""
    before = len(all_jobs(api.app))
    if isinstance(body, (bytes, str)):
        response = api.post('/api/jobs', body, status=status,
                            content_type='application/json', **kwargs)
    else:
        response = start(api, body, status=status, **kwargs)
    assert response.content_type == 'application/json'
    assert set(response.json) == {'error', 'detail'}
    assert len(all_jobs(api.app)) == before
    return response.json


# -- starting a job --------------------------------------------------------

def test_post_records_the_job_and_sends_it_after_commit(api, published):
    response = start(api)
    job = response.json
    assert response.status_code == 202
    assert response.headers['Location'] == f'/api/jobs/{job["id"]}'
    assert (job['task'], job['state'], job['args'], job['kwargs']) == \
        ('myapp.tasks.add', 'PENDING', [5, 10], {})
    assert job['origin'] == 'http' and job['result'] is None
    assert published == [job['id']]
    stored = load_job(api.app, job['id'])
    assert stored.sent_at is not None  # the broker accepted it


@pytest.mark.parametrize('headers, expected', [
    ({}, ['INSERT']),
    ({'Idempotency-Key': 'once'}, ['SELECT', 'INSERT'])])
def test_a_post_costs_one_insert(api, published, headers, expected):
    """The job's row, written at the commit with the key if there is one;
    the response is made from it, not read back."""
    engine = api.app.registry['dbsession_factory'].kw['bind']
    statements = []

    def executed(connection, cursor, statement, *args):
        statements.append(statement.split()[0])

    event.listen(engine, 'before_cursor_execute', executed)
    try:
        api.post_json('/api/jobs', {'task': 'myapp.tasks.add',
                                    'args': [1, 2]},
                      headers=headers, status=202)
    finally:
        event.remove(engine, 'before_cursor_execute', executed)
    assert statements == expected


def test_the_response_has_the_documented_fields_and_utc_times(api):
    job = start(api).json
    assert {'id', 'task', 'state', 'args', 'kwargs', 'result', 'error',
            'progress', 'created_at', 'started_at', 'finished_at'} <= \
        set(job)
    created = datetime.datetime.fromisoformat(job['created_at'])
    assert created.utcoffset() == datetime.timedelta(0)


def test_countdown_becomes_an_absolute_eta(api, published):
    # (Under 20 s: a job due later waits in the outbox, test_jobs_outbox.)
    job = start(api, dict(ADD, countdown=10, queue='celery')).json
    eta = datetime.datetime.fromisoformat(job['eta'])
    created = datetime.datetime.fromisoformat(job['created_at'])
    assert 9 <= (eta - created).total_seconds() <= 11
    assert job['queue'] == 'celery'
    assert published == [job['id']]


def test_eta_in_iso_8601(api):
    job = start(api, dict(ADD, eta='2030-01-01T12:00:00+09:00')).json
    assert job['eta'] == '2030-01-01T03:00:00.000+00:00'


def test_location_is_root_relative_never_from_the_host_header(api):
    """The client chooses Host: an address built from it could point a
    cache or a log reader anywhere."""
    response = start(api, headers={'Host': 'localhost:6666'})
    assert response.headers['Location'] == \
        f'/api/jobs/{response.json["id"]}'


def test_location_is_absolute_from_the_configured_app_url(
        tmp_path, initialize_db, published):
    ini = initialize_db(write_ini(
        tmp_path, broker='memory',
        app='myapp.url = https://localhost:8443/myapp/'))
    client = webtest.TestApp(get_app(ini))
    response = start(client, headers={'Host': 'localhost:6666'})
    assert response.headers['Location'] == \
        f'https://localhost:8443/myapp/api/jobs/{response.json["id"]}'
    client.app.registry['dbsession_factory'].kw['bind'].dispose()


@pytest.mark.parametrize('body, error', [
    ([1, 2], 'the body must be a JSON object'),
    ({'task': 'myapp.tasks.add', 'args': [1, 2], 'kwarg': {}},
     'unknown fields in the body'),
    ({'args': [1, 2]}, 'invalid "task"'),
    ({'task': 7}, 'invalid "task"'),
    ({'task': 'myapp.tasks.add', 'args': {'x': 1}}, 'invalid "args"'),
    ({'task': 'myapp.tasks.add', 'args': [1, 2], 'kwargs': [3]},
     'invalid "kwargs"'),
    (dict(ADD, countdown=-1), 'invalid "countdown"'),
    (dict(ADD, countdown=True), 'invalid "countdown"'),
    (dict(ADD, countdown='5'), 'invalid "countdown"'),
    (dict(ADD, countdown=10 ** 12), 'invalid "countdown"'),
    (dict(ADD, countdown=5, eta='2030-01-01T00:00:00Z'),
     'give "countdown" or "eta", not both'),
    (dict(ADD, eta='tomorrow'), 'invalid "eta"'),
    (dict(ADD, eta='2030-01-01T12:00:00'), 'invalid "eta"'),  # no offset
    (dict(ADD, eta='9999-12-31T23:59:59-05:00'), 'invalid "eta"'),
    (dict(ADD, eta=1700000000), 'invalid "eta"'),
    (dict(ADD, queue=''), 'invalid "queue"'),
    (dict(ADD, queue='a queue'), 'invalid "queue"'),
])
def test_malformed_requests_are_400(api, published, body, error):
    assert refused(api, body)['error'] == error
    assert published == []


@pytest.mark.parametrize('raw', [
    b'not json', b'', b'{"task": ', b'\xff\xfe', b'{"task": NaN}',
    b'{"task": "myapp.tasks.add", "args": [1e400, 1]}',
    b'{"task": "myapp.tasks.add", "args": [1, -1e400]}',
    b'{"task": "myapp.tasks.xsum", "args": [[[[[[Infinity]]]]]]}',
    b'{"task": "myapp.tasks.xsum", "args": [[[{"a": [NaN]}]]]}',
    b'{"task": "myapp.tasks.add", "args": ["\xed\xa0\x80", 1]}',
    b'{"task": "myapp.tasks.add", "args": ["\xc0\x80", 1]}',
], ids=['text', 'empty', 'truncated', 'not-utf8', 'nan',
        'too-large-for-a-float', 'too-small-for-a-float', 'deep-infinity',
        'deep-nan', 'encoded-surrogate', 'overlong-utf8'])
def test_a_body_that_is_not_json_is_400(api, published, raw):
    assert refused(api, raw)['error'] == 'the body is not JSON'
    assert published == []


def nested(depth, inner='1'):
    """JSON text: ``inner`` in ``depth`` arrays."""
    return '[' * depth + inner + ']' * depth


@pytest.mark.parametrize('depth', [
    MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 600, 952, 960, 970, 1200, 30000])
@pytest.mark.parametrize('template, outer, field', [
    ('{"task": "myapp.tasks.xsum", "args": [%s]}', 2, 'args'),
    ('{"task": "myapp.tasks.xsum", "kwargs": {"numbers": %s}}', 2, 'kwargs'),
    ('{"task": "myapp.tasks.xsum", "args": [[1]], "eta": %s}', 1, 'eta'),
    ('%s', 0, 'body'),
    ('{"task": "myapp.tasks.xsum", "nope": %s}', 1, 'body'),
])
def test_json_nested_too_deeply_is_refused_at_every_depth(
        api, published, depth, template, outer, field):
    """The body is level 1, ``args`` level 2: what nests deeper than
    MAX_JSON_DEPTH levels is refused, naming the field, however deep (the
    worker's and the recorder's encoders recurse)."""
    body = template % nested(depth - outer)
    levels = max(itertools.accumulate(
        {'[': 1, '{': 1, ']': -1, '}': -1}.get(char, 0) for char in body))
    assert levels == depth
    if len(body) > MAX_BODY_BYTES:
        assert refused(api, body, status=413)['error'].startswith(
            'the body is larger')
        return
    if depth <= MAX_JSON_DEPTH:
        return  # accepted, or refused for another reason: not nesting
    assert refused(api, body) == {
        'error': f'invalid "{field}"',
        'detail': f'nested deeper than {MAX_JSON_DEPTH} levels'}
    assert published == []


def test_args_at_the_nesting_limit_start_a_job(api, published):
    numbers = json.loads(nested(MAX_JSON_DEPTH - 2))  # args is level 2
    job = start(api, {'task': 'myapp.tasks.xsum', 'args': [numbers]}).json
    assert published == [job['id']]
    error = refused(api, {'task': 'myapp.tasks.xsum', 'args': [[numbers]]})
    assert error['error'] == 'invalid "args"'


@pytest.mark.parametrize('body, field', [
    ({'task': 'myapp.tasks.xsum', 'args': [['a\x00b']]}, 'args'),
    ({'task': 'myapp.tasks.xsum', 'args': [['\ud800']]}, 'args'),
    ({'task': 'myapp.tasks.xsum', 'args': [[{'\x00': 1}]]}, 'args'),
    ({'task': 'myapp.tasks.xsum', 'kwargs': {'numbers': ['\udfff']}},
     'kwargs'),
    ({'task': 'myapp.tasks.xsum\x00', 'args': [[1]]}, 'task'),
    ({'task': 'myapp.tasks.xsum', 'args': [[1]], 'queue': 'q\x00'},
     'queue'),
    ({'task': 'myapp.tasks.xsum', 'args': [[1]],
      'eta': '2030-01-01T00:00:00Z\ud800'}, 'eta'),
])
def test_json_text_with_nul_or_a_lone_surrogate_is_refused(
        api, published, body, field):
    raw = json.dumps(body)  # ASCII, with \u0000 and \ud800 escapes
    error = refused(api, raw)
    assert error['error'] == f'invalid "{field}"'
    assert 'NUL' in error['detail'] or 'surrogate' in error['detail']
    assert published == []


@pytest.mark.parametrize('content_type', [
    'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data',
    None])
def test_a_body_not_declared_json_is_415(api, published, content_type):
    # What another site can make a browser send without asking: refused,
    # nothing recorded or queued.
    headers = {'Content-Type': content_type} if content_type else {}
    response = api.post('/api/jobs', json.dumps(ADD), headers=headers,
                        status=415)
    assert response.json['error'] == 'the body must be sent as ' \
        'application/json'
    assert published == [] and all_jobs(api.app) == []


def test_a_revoke_not_declared_json_is_415_and_revokes_nothing(
        api, broadcasts):
    job = start(api, dict(ADD, countdown=15)).json
    api.post(f'/api/jobs/{job["id"]}/revoke', '',
             headers={'Content-Type': 'text/plain'}, status=415)
    assert load_job(api.app, job['id']).state == 'PENDING'
    assert broadcasts == []


@pytest.mark.parametrize('content_type', [
    None, 'text/plain', 'application/x-www-form-urlencoded',
    'multipart/form-data', 'application/json-patch+json', 'text/json',
    'application/jsonx'])
@pytest.mark.parametrize('body', ['', json.dumps(ADD), '{}'])
@pytest.mark.parametrize('path', ['/api/jobs', '/api/jobs/{id}/revoke'])
def test_every_state_changing_request_must_be_declared_json(
        api, published, broadcasts, path, body, content_type):
    """A form or text/plain is what another site can make a browser send
    unasked: 415, even empty, and nothing started or revoked."""
    job = start(api, dict(ADD, countdown=15)).json
    headers = {'Content-Type': content_type} if content_type else {}
    response = api.request(path.format(id=job['id']), method='POST',
                           body=body.encode(), headers=headers, status=415)
    assert response.json['error'] == \
        'the body must be sent as application/json'
    assert [each.id for each in all_jobs(api.app)] == [job['id']]
    assert load_job(api.app, job['id']).state == 'PENDING'
    assert published == [job['id']] and broadcasts == []


@pytest.mark.parametrize('method', ['PUT', 'PATCH', 'DELETE'])
@pytest.mark.parametrize('path', ['/api/jobs', '/api/jobs/{id}',
                                  '/api/jobs/{id}/revoke', '/api/tasks',
                                  '/api/schedules'])
def test_no_other_method_changes_anything(api, published, broadcasts,
                                          method, path):
    job = start(api, dict(ADD, countdown=15)).json
    response = api.request(path.format(id=job['id']), method=method,
                           body=json.dumps({'terminate': True}).encode(),
                           content_type='application/json', status=405)
    assert method not in response.headers['Allow']
    assert load_job(api.app, job['id']).state == 'PENDING'
    assert published == [job['id']] and broadcasts == []


def test_an_oversized_body_is_413(api, published):
    body = dict(ADD, args=['x' * MAX_BODY_BYTES, 1])
    error = refused(api, body, status=413)
    assert error['error'] == f'the body is larger than {MAX_BODY_BYTES} bytes'
    assert published == []


@pytest.mark.parametrize('task', [
    'myapp.tasks.nothing',            # no such task
    'myapp.jobs.tasks.purge_history',  # exists, but not exposed
    'celery.backend_cleanup',          # Celery's own
])
def test_only_exposed_tasks_start(api, published, task):
    error = refused(api, {'task': task, 'args': [30]})
    assert error['error'] == f'task "{task}" cannot be started over HTTP'
    assert 'myapp.tasks.add' in error['detail']['available']
    assert published == []


@pytest.mark.parametrize('body, detail', [
    ({'task': 'myapp.tasks.add', 'args': [1]},
     "missing a required argument: 'y'"),
    ({'task': 'myapp.tasks.add', 'args': [1, 2, 3]},
     'too many positional arguments'),
    ({'task': 'myapp.tasks.add', 'args': [1, 2], 'kwargs': {'z': 2}},
     "got an unexpected keyword argument 'z'"),
    ({'task': 'myapp.tasks.add', 'args': [1, 2], 'kwargs': {'x': 2}},
     "multiple values for argument 'x'"),
    ({'task': 'myapp.tasks.add', 'args': [1, 2],
      'kwargs': {'request': None}},
     "got an unexpected keyword argument 'request'"),
])
def test_arguments_must_fit_the_signature(api, published, body, detail):
    error = refused(api, body)
    assert error['error'] == \
        'the arguments do not fit myapp.tasks.add(x, y)'
    assert error['detail'] == detail
    assert published == []


@pytest.mark.parametrize('args, kwargs, detail', [
    (['1', 2], {}, {'x': 'expected float, got string'}),
    ([1, 2], {'seconds': 1.5}, {'seconds': 'expected int, got number'}),
    ([1, 2], {'seconds': True}, {'seconds': 'expected int, got boolean'}),
    ([None, [2]], {}, {'x': 'expected float, got null',
                       'y': 'expected float, got array'}),
])
def test_annotations_are_checked(api, published, args, kwargs, detail):
    body = {'task': 'myapp.tasks.slow_add', 'args': args, 'kwargs': kwargs}
    error = refused(api, body)
    assert error['error'] == \
        'arguments of the wrong type for myapp.tasks.slow_add'
    assert error['detail'] == detail
    assert published == []


def test_an_integer_is_a_fine_float(api):
    body = {'task': 'myapp.tasks.slow_add', 'args': [1, 2.5],
            'kwargs': {'seconds': 0}}
    assert start(api, body).json['kwargs'] == {'seconds': 0}


# -- idempotency keys ------------------------------------------------------

def test_the_same_idempotency_key_returns_the_same_job(api, published):
    headers = {'Idempotency-Key': 'order-42'}
    first = start(api, headers=headers)
    again = start(api, headers=headers)
    assert again.json['id'] == first.json['id']
    assert again.headers['Location'] == first.headers['Location']
    assert published == [first.json['id']]  # queued once
    assert len(all_jobs(api.app)) == 1
    other = start(api, headers={'Idempotency-Key': 'order-43'})
    assert other.json['id'] != first.json['id']


def test_a_key_reused_for_another_request_is_422_naming_no_job(
        api, published):
    headers = {'Idempotency-Key': 'order-42'}
    job = start(api, headers=headers).json
    response = api.post_json('/api/jobs', dict(ADD, args=[1, 1]),
                             headers=headers, status=422)
    assert response.json == {
        'error': 'this Idempotency-Key was used for another request',
        'detail': 'send another key for another request'}
    # Anonymous clients share a scope: the key may be another client's.
    assert job['id'] not in response.text
    assert 'Location' not in response.headers
    assert published == [job['id']] and len(all_jobs(api.app)) == 1


class HeaderIdentity:
    """A security policy for the tests: the user is X-User."""

    def identity(self, request):
        return request.headers.get('X-User')

    def authenticated_userid(self, request):
        return self.identity(request)

    def permits(self, request, context, permission):
        return True


@pytest.fixture
def users(api):
    from pyramid.interfaces import ISecurityPolicy

    api.app.registry.registerUtility(HeaderIdentity(), ISecurityPolicy)
    yield api
    api.app.registry.unregisterUtility(provided=ISecurityPolicy)


def test_idempotency_keys_are_each_users_own(users, published):
    def post(user, body=ADD):
        return start(users, body, headers={'Idempotency-Key': 'order-42',
                                           'X-User': user}).json['id']

    alice = post('alice')
    assert post('alice') == alice
    bob = post('bob')  # the same key, another user: another job
    assert bob != alice
    # Another call with Alice's key: a job of Carol's own, not a 422
    # naming Alice's job; Bob's own key for another call is a 422, which
    # names no job either.
    carol = post('carol', dict(ADD, args=[1, 1]))
    assert carol not in (alice, bob)
    refused_for_bob = users.post_json(
        '/api/jobs', dict(ADD, args=[2, 2]), status=422, headers={
            'Idempotency-Key': 'order-42', 'X-User': 'bob'})
    assert alice not in refused_for_bob.text
    assert bob not in refused_for_bob.text
    anonymous = start(users, headers={'Idempotency-Key': 'order-42'}).json
    assert anonymous['id'] not in (alice, bob, carol)
    assert sorted(published) == sorted([alice, bob, carol,
                                        anonymous['id']])


def test_keys_are_stored_as_a_digest_of_the_scope_and_the_key(api):
    job = start(api, headers={'Idempotency-Key': 'order-42'}).json
    stored = load_job(api.app, job['id']).idempotency_key
    assert stored == stored_idempotency_key('order-42') != 'order-42'
    assert len(stored) == 64
    assert stored_idempotency_key('order-42', 'alice') != stored != \
        stored_idempotency_key('order-42', 'anonymous')


@pytest.mark.parametrize('key', ['', ' leading-space', 'x' * 256, 'é'])
def test_a_malformed_idempotency_key_is_400(api, key):
    headers = {'Idempotency-Key': key.encode('utf-8').decode('latin-1')}
    assert refused(api, ADD, headers=headers)['error'] == \
        'invalid "Idempotency-Key"'


def test_a_concurrent_request_with_the_same_key_wins_and_is_returned(
        api, published):
    """The other request commits between our look-up and our insert: the
    unique key refuses ours, and the retried request returns its job."""
    concurrent = {}

    def commit_a_rival_first(event):
        if concurrent:
            return
        concurrent['done'] = True
        with transaction_of(api.app) as request:
            request.dbsession.add(Job(
                id='rival-job', task_name='myapp.tasks.add', args=[5, 10],
                kwargs={}, options={}, origin='http',
                idempotency_key=stored_idempotency_key('order-42')))

    api.app.registry.registerHandler(commit_a_rival_first, (TaskEnqueued,))
    try:
        response = start(api, headers={'Idempotency-Key': 'order-42'})
    finally:
        api.app.registry.unregisterHandler(commit_a_rival_first,
                                           (TaskEnqueued,))
    assert response.json['id'] == 'rival-job'
    assert published == []  # ours was abandoned with its transaction
    assert [job.id for job in all_jobs(api.app)] == ['rival-job']


# -- reading jobs ------------------------------------------------------------

def test_get_a_job(api):
    job = start(api).json
    shown = api.get(f'/api/jobs/{job["id"]}', status=200).json
    assert shown['id'] == job['id']
    # The journal marks it sent a few milliseconds after the broker took it.
    wait_until(lambda: api.get(f'/api/jobs/{job["id"]}').json['sent_at'],
               timeout=5)


def test_an_unknown_job_is_404(api):
    error = api.get('/api/jobs/0b0e8c4a-0000-4000-8000-000000000000',
                    status=404).json
    assert error == {'error': 'no such job',
                     'detail': {'id': '0b0e8c4a-0000-4000-8000-000000000000'}}


@pytest.mark.parametrize('job_id', ['x' * 37, 'a%20b', '%C3%A9'])
def test_a_malformed_job_id_is_400(api, job_id):
    assert api.get(f'/api/jobs/{job_id}', status=400).json['error'] == \
        'invalid "id"'


def test_the_list_is_newest_first_in_keyset_pages(api):
    ids = [start(api, dict(ADD, args=[n, n])).json['id'] for n in range(5)]
    pages, url = [], '/api/jobs?limit=2'
    while url:
        page = api.get(url, status=200).json
        pages.append([job['id'] for job in page['jobs']])
        url = page['next'] and f'/api/jobs?limit=2&before={page["next"]}'
    assert pages == [ids[:2:-1], ids[2:0:-1], ids[:1]]


def test_the_list_filters_by_task_and_state(api):
    added = start(api).json
    multiplied = start(api, dict(ADD, task='myapp.tasks.mul')).json
    set_state(api.app, added['id'], 'SUCCESS')

    def listed(query):
        return [job['id'] for job in
                api.get(f'/api/jobs?{query}', status=200).json['jobs']]

    assert listed('task=myapp.tasks.mul') == [multiplied['id']]
    assert listed('state=SUCCESS') == [added['id']]
    assert listed('state=PENDING&task=myapp.tasks.add') == []
    assert api.get('/api/jobs').json['next'] is None


@pytest.mark.parametrize('query, error', [
    ('limit=0', 'invalid "limit"'),
    ('limit=101', 'invalid "limit"'),
    ('limit=ten', 'invalid "limit"'),
    ('limit=%C2%B2', 'invalid "limit"'),  # a superscript two
    ('state=DONE', 'invalid "state"'),
    ('state=pending', 'invalid "state"'),
    ('before=nonsense', 'invalid "before"'),
    ('before=WyJub3QgYSB0aW1lIiwgIngiXQ', 'invalid "before"'),
    ('before=' + 'A' * 30, 'invalid "before"'),
    ('task=', 'invalid "task"'),
    ('page=2', 'unknown query parameters'),
    ('state=SUCCESS&state=FAILURE', 'query parameters given more than once'),
])
def test_bad_list_queries_are_400(api, query, error):
    assert api.get(f'/api/jobs?{query}', status=400).json['error'] == error


def test_lists_show_a_preview_of_large_values_the_job_all_of_them(api):
    numbers = list(range(1000))
    big = start(api, {'task': 'myapp.tasks.xsum', 'args': [numbers]}).json
    small = start(api).json
    set_state(api.app, big['id'], 'SUCCESS', result={'sum': numbers})
    set_state(api.app, small['id'], 'SUCCESS', result=15)
    listed = {job['id']: job for job in api.get('/api/jobs').json['jobs']}

    shown = listed[big['id']]
    assert shown['args'] is None and shown['args_truncated'] is True
    assert shown['result'] is None and shown['result_truncated'] is True
    for name in ('args', 'result'):
        preview = shown[f'{name}_preview']
        assert len(preview) == PREVIEW_CHARS and preview.endswith('…')
    assert shown['result_preview'].startswith('{"sum": [0, 1, 2, 3')
    assert shown['kwargs'] == {} and shown['kwargs_truncated'] is False
    # The job itself: the whole values, and the same previews.
    whole = api.get(f'/api/jobs/{big["id"]}').json
    assert whole['args'] == [numbers] and whole['result'] == {'sum': numbers}
    assert whole['result_truncated'] is True
    assert whole['result_preview'] == shown['result_preview']

    shown = listed[small['id']]
    assert (shown['args'], shown['result']) == ([5, 10], 15)
    assert (shown['args_preview'], shown['result_preview']) == ('[5, 10]',
                                                                '15')
    assert not shown['args_truncated'] and not shown['result_truncated']


# -- revoking ------------------------------------------------------------

def test_revoking_a_queued_job(api, broadcasts):
    job = start(api).json
    revoked = api.post(f'/api/jobs/{job["id"]}/revoke', status=202,
                       content_type='application/json').json
    assert revoked['state'] == 'REVOKED' and revoked['finished_at']
    assert load_job(api.app, job['id']).state == 'REVOKED'
    assert broadcasts == [(job['id'], {'terminate': False})]


def test_revoking_with_terminate_again_is_fine(api, broadcasts):
    job = start(api).json
    api.post_json(f'/api/jobs/{job["id"]}/revoke', {}, status=202)
    again = api.post_json(f'/api/jobs/{job["id"]}/revoke',
                          {'terminate': True}, status=202).json
    assert again['state'] == 'REVOKED'
    assert broadcasts == [(job['id'], {'terminate': False}),
                          (job['id'], {'terminate': True})]


def test_a_finished_job_cannot_be_revoked(api, broadcasts):
    job = start(api).json
    set_state(api.app, job['id'], 'SUCCESS')
    error = api.post(f'/api/jobs/{job["id"]}/revoke', status=409,
                     content_type='application/json').json
    assert error == {'error': 'the job has already finished',
                     'detail': {'state': 'SUCCESS'}}
    assert broadcasts == []


@pytest.mark.parametrize('body', ['{"terminate": "yes"}', '{"now": true}',
                                  '[true]', 'true'])
def test_a_bad_revoke_body_is_400(api, broadcasts, body):
    job = start(api).json
    api.post(f'/api/jobs/{job["id"]}/revoke', body, status=400,
             content_type='application/json')
    assert load_job(api.app, job['id']).state == 'PENDING'
    assert broadcasts == []


def test_revoking_an_unknown_job_is_404(api, broadcasts):
    api.post('/api/jobs/nope/revoke', status=404,
             content_type='application/json')
    assert broadcasts == []


# -- tasks, and errors for any /api path ---------------------------------

def test_the_exposed_tasks_with_their_parameters(api):
    tasks = {task['name']: task for task in
             api.get('/api/tasks', status=200).json['tasks']}
    assert sorted(tasks) == ['myapp.tasks.add', 'myapp.tasks.mul',
                             'myapp.tasks.record_sum', 'myapp.tasks.slow_add',
                             'myapp.tasks.xsum']
    slow_add = tasks['myapp.tasks.slow_add']
    assert slow_add['description'].startswith('Add two numbers, slowly')
    assert slow_add['parameters'] == [
        {'name': 'x', 'kind': 'positional_or_keyword', 'annotation': 'float',
         'required': True},
        {'name': 'y', 'kind': 'positional_or_keyword', 'annotation': 'float',
         'required': True},
        {'name': 'seconds', 'kind': 'positional_or_keyword',
         'annotation': 'int', 'required': False, 'default': 10},
    ]


@pytest.mark.parametrize('method, path, allowed', [
    ('DELETE', '/api/jobs', 'GET, HEAD, POST'),
    ('PUT', '/api/jobs/some-id', 'GET, HEAD'),
    ('GET', '/api/jobs/some-id/revoke', 'POST'),
    ('POST', '/api/tasks', 'GET, HEAD'),
])
def test_a_wrong_method_is_a_json_405(api, method, path, allowed):
    response = api.request(path, method=method, status=405)
    assert response.headers['Allow'] == allowed
    assert response.json == {'error': 'method not allowed', 'detail': {
        'method': method, 'allowed': allowed.split(', ')}}


@pytest.mark.parametrize('path', ['/api', '/api/', '/api/nothing',
                                  '/api/jobs/a/b/c'])
def test_an_unknown_api_path_is_a_json_404(api, path):
    assert api.get(path, status=404).json == {
        'error': 'not found', 'detail': {'path': path}}


def test_a_view_that_fails_after_enqueueing_is_a_json_500_and_sends_nothing(
        api, published, monkeypatch):
    def bug(job):
        raise RuntimeError('a bug')

    monkeypatch.setattr('myapp.jobs.api.job_json', bug)
    error = start(api, status=500).json
    assert error == {'error': 'internal error', 'detail': None}
    assert published == [] and all_jobs(api.app) == []


def test_pages_outside_the_api_stay_html(api):
    assert 'Not found' in api.get('/nothing', status=404).text


def test_other_http_errors_under_the_api_are_json_too():
    from pyramid.httpexceptions import HTTPTooManyRequests
    from pyramid.testing import DummyRequest

    from myapp.jobs.errors import http_error

    request = DummyRequest(path='/api/jobs')
    error = HTTPTooManyRequests('slow down', headers={'Retry-After': '5'})
    assert http_error(error, request) == {'error': 'too many requests',
                                          'detail': 'slow down'}
    assert request.response.status_code == 429
    assert request.response.headers['Retry-After'] == '5'


# -- text that is not text -----------------------------------------------

@pytest.mark.parametrize('path', [
    '/api/jobs/a%00b', '/api/jobs/%ff', '/api/jobs/%ED%A0%80',
    '/api/jobs/%C0%80', '/api/jobs/%00/revoke', '/api/%ff'])
def test_a_path_that_is_not_text_is_a_json_404(api, path):
    response = api.get(path, status=404)
    assert response.json['error'] == 'not found'
    assert response.json['detail']['path'].lower() == path.lower()


def cursor_of(value):
    import base64
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


@pytest.mark.parametrize('query, name', [
    ('task=a%00b', 'task'),
    ('task=%ff', 'task'),
    ('task=%ED%A0%80', 'task'),  # a surrogate, encoded in UTF-8
    ('task=%C0%80', 'task'),     # an overlong NUL
    ('state=%00', 'state'),
    ('limit=1%00', 'limit'),
    ('before=%00', 'before'),
    ('%ff=1', 'query'),
])
def test_query_text_that_is_not_text_is_400_before_any_view(api, query,
                                                             name):
    error = api.get(f'/api/jobs?{query}', status=400).json
    assert error['error'] == f'invalid "{name}"'
    # Whatever the path or the method.
    api.post(f'/api/jobs?{query}', json.dumps(ADD), status=400,
             content_type='application/json')
    api.get(f'/api/tasks?{query}', status=400)
    assert all_jobs(api.app) == []


@pytest.mark.parametrize('cursor', [
    ['2030-01-01T00:00:00+00:00', 'a\x00b'],
    ['2030-01-01T00:00:00+00:00', '\ud800'],
    ['2030-01-01T00:00:00+00:00', 'x' * 37],
    ['0001-01-01T00:00:00+05:00', 'x'],  # before year 1 in UTC
    ['9999-12-31T23:59:59-05:00', 'x'],  # after year 9999 in UTC
])
def test_a_cursor_that_cannot_reach_the_database_is_400(api, cursor):
    query = 'before=' + cursor_of(cursor)
    error = api.get(f'/api/jobs?{query}', status=400).json
    assert error['error'] == 'invalid "before"'


def test_the_migration_keeps_the_keys_of_earlier_jobs(tmp_path):
    """Keys stored before scoping were all anonymous clients': after the
    upgrade, a retry with the same key still finds its job."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, text

    url = f'sqlite:///{tmp_path}/myapp.sqlite'
    ini = tmp_path / 'alembic.ini'
    ini.write_text(f'[app:main]\nuse = egg:myapp\nsqlalchemy.url = {url}\n\n'
                   '[alembic]\nscript_location = myapp:alembic\n')
    config = Config(str(ini))
    command.upgrade(config, '0003')
    engine = create_engine(url)
    with engine.begin() as connection:
        for job_id, key in [('a', 'order-42'), ('b', None)]:
            connection.execute(text(
                "INSERT INTO jobs (id, task_name, args, kwargs, options, "
                "state, origin, retries, idempotency_key, created_at) VALUES "
                "(:id, 'myapp.tasks.add', '[]', '{}', '{}', 'SUCCESS', "
                "'http', 0, :key, '2026-01-01 00:00:00')"),
                {'id': job_id, 'key': key})
    command.upgrade(config, 'head')
    with engine.connect() as connection:
        keys = dict(connection.execute(text(
            'SELECT id, idempotency_key FROM jobs')).all())
    assert keys == {'a': stored_idempotency_key('order-42'), 'b': None}
    command.downgrade(config, '0003')
    with engine.connect() as connection:
        assert connection.scalar(text(
            'SELECT count(*) FROM jobs WHERE idempotency_key IS NOT NULL')) == 0
    engine.dispose()
