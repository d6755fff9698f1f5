"""Access control: tokens and roles on the API and the pages, the sign-in
page, ``myapp_tokens``, and the security headers of every response.

A refusal records, queues and changes nothing: each refused request is
followed by a look at the jobs table, the periodic jobs and what was
published.
"""
import json

import pytest
import webtest
from pyramid.paster import get_app
from sqlalchemy import select

from myapp import tokens
from myapp.models import AccessToken, PeriodicJob
from myapp.scripts.tokens import main as myapp_tokens
from myapp.security import SECURITY_HEADERS

from .jobs_support import all_jobs, transaction_of
from .support import write_ini

ADD = {'task': 'myapp.tasks.add', 'args': [2, 3]}
DAILY = {'name': 'daily', 'task': 'myapp.tasks.add', 'args': [1, 2],
         'type': 'integer', 'schedule': 60}


@pytest.fixture(scope='module')
def secured_ini(tmp_path_factory, initialize_db):
    return initialize_db(write_ini(tmp_path_factory.mktemp('secured'),
                                   broker='memory', app='auth.enabled = true'))


@pytest.fixture
def secured(secured_ini):
    """(client, {role: (name, secret)}): the app with access control on,
    a viewer and an operator token."""
    app = get_app(secured_ini)
    with transaction_of(app) as request:
        for table in ('jobs', 'periodic_jobs', 'access_tokens'):
            request.dbsession.execute(
                AccessToken.metadata.tables[table].delete())
        made = {role: (f'{role}-1', tokens.create(request.dbsession,
                                                  f'{role}-1', role))
                for role in ('viewer', 'operator')}
    yield webtest.TestApp(app), made
    app.registry['dbsession_factory'].kw['bind'].dispose()


def bearer(secret):
    return {'Authorization': f'Bearer {secret}'}


def nothing_done(client, published):
    """No job recorded or queued, no periodic job made."""
    assert all_jobs(client.app) == []
    assert published == []
    with transaction_of(client.app) as request:
        assert request.dbsession.scalars(select(PeriodicJob.name)).all() \
            == []


# -- the API -------------------------------------------------------------

@pytest.mark.parametrize('headers, error, challenge', [
    ({}, 'a token is needed', 'Bearer realm="myapp"'),
    (bearer('not-a-token'), 'the token is not valid',
     'Bearer realm="myapp", error="invalid_token"'),
    ({'Authorization': 'Basic dXNlcjpwdw=='}, 'the token is not valid',
     'Bearer realm="myapp", error="invalid_token"'),
])
def test_no_valid_token_is_401_and_nothing_happens(secured, published,
                                                   headers, error, challenge):
    client, made = secured
    for method, path, body in (('GET', '/api/jobs', None),
                               ('POST', '/api/jobs', ADD),
                               ('POST', '/api/schedules', DAILY)):
        response = client.request(
            path, method=method, headers={**headers, **(
                {'Content-Type': 'application/json'} if body else {})},
            body=json.dumps(body).encode() if body else b'',
            expect_errors=True)
        assert response.status_int == 401, (path, response.body)
        assert response.json['error'] == error
        assert 'myapp_tokens INI create' in response.json['detail']
        assert response.headers['WWW-Authenticate'] == challenge
    nothing_done(client, published)


def test_a_viewer_may_look_but_not_act(secured, published):
    client, made = secured
    viewer = bearer(made['viewer'][1])
    assert client.get('/api/jobs', headers=viewer).json == \
        {'jobs': [], 'next': None}
    assert client.get('/api/tasks', headers=viewer).status_int == 200
    assert client.get('/api/schedules', headers=viewer).status_int == 200
    for path in ('/api/workers', '/api/queues', '/api/jobs/stuck'):
        assert client.get(path, headers=viewer).status_int == 200, path
    refused = [
        client.post_json('/api/jobs', ADD, headers=viewer, status=403),
        client.post_json('/api/jobs/x/revoke', {}, headers=viewer,
                         status=403),
        client.post_json('/api/jobs/x/retry', {}, headers=viewer,
                         status=403),
        client.post_json('/api/jobs/retry', {'state': 'FAILURE'},
                         headers=viewer, status=403),
        client.post_json('/api/jobs/revoke', {'state': 'PENDING'},
                         headers=viewer, status=403),
        client.post_json('/api/schedules', DAILY, headers=viewer,
                         status=403),
        client.patch_json('/api/schedules/daily', {'enabled': False},
                          headers=viewer, status=403),
        client.delete('/api/schedules/daily', headers=viewer, status=403),
        client.post_json('/api/schedules/daily/run', {}, headers=viewer,
                         status=403),
    ]
    for response in refused:
        assert response.json == {
            'error': 'the role "viewer" may not do this',
            'detail': {'role': 'viewer', 'needed': 'operator'}}
    nothing_done(client, published)


def test_an_operator_acts_and_its_keys_are_its_own(secured, published):
    client, made = secured
    operator = bearer(made['operator'][1])
    job = client.post_json('/api/jobs', ADD, status=202,
                           headers={**operator, 'Idempotency-Key': 'k1'})
    again = client.post_json('/api/jobs', ADD, status=202,
                             headers={**operator, 'Idempotency-Key': 'k1'})
    assert again.json['id'] == job.json['id']
    # Another operator's same key is another client's: another job.
    with transaction_of(client.app) as request:
        other = tokens.create(request.dbsession, 'operator-2', 'operator')
    theirs = client.post_json('/api/jobs', ADD, status=202,
                              headers={**bearer(other),
                                       'Idempotency-Key': 'k1'})
    assert theirs.json['id'] != job.json['id']
    client.post_json('/api/schedules', DAILY, headers=operator, status=201)
    assert len(published) == 2


def test_a_revoked_token_is_refused_at_once(secured):
    client, made = secured
    name, secret = made['operator']
    client.get('/api/jobs', headers=bearer(secret), status=200)
    with transaction_of(client.app) as request:
        tokens.revoke(request.dbsession, name)
    assert client.get('/api/jobs', headers=bearer(secret),
                      status=401).json['error'] == 'the token is not valid'


# -- the pages -----------------------------------------------------------

def sign_in(client, name, secret, next_path='/jobs', status=303):
    page = client.get(f'/login?next={next_path}')
    form = page.forms['login']
    form['name'], form['token'] = name, secret
    return form.submit(status=status)


def test_a_page_sends_to_the_sign_in_page_and_back(secured):
    client, made = secured
    response = client.get('/jobs?limit=5', status=303)
    assert response.location.endswith('/login?next=%2Fjobs%3Flimit%3D5')
    signed_in = sign_in(client, *made['operator'], next_path='/jobs?limit=5')
    assert signed_in.status_int == 303
    assert signed_in.location.endswith('/jobs?limit=5')
    page = client.get('/jobs')
    assert 'operator-1 (operator)' in page.text
    assert 'Start a job' in page.text


def test_a_viewer_sees_no_form_that_acts_and_a_post_is_403(secured,
                                                           published):
    client, made = secured
    sign_in(client, *made['viewer'])
    page = client.get('/jobs')
    assert 'viewer-1 (viewer)' in page.text
    assert 'Start a job' not in page.text
    assert 'Add a periodic job' not in client.get('/schedules').text
    token = page.forms[0]['csrf_token'].value  # the sign-out form's
    refused = client.post('/jobs', {'csrf_token': token, 'task':
                                    'myapp.tasks.add', 'args': '[1, 2]'},
                          status=403)
    assert 'may look but not act' in refused.text
    client.post('/seed/add', {'csrf_token': token}, status=403)
    client.post('/jobs/retry', {'csrf_token': token, 'state': 'FAILURE',
                                'confirmed': 'yes'}, status=403)
    nothing_done(client, published)


@pytest.mark.parametrize('name, secret_of', [
    ('operator-1', lambda made: 'wrong'),
    ('viewer-1', lambda made: made['operator'][1]),  # another's secret
])
def test_a_wrong_name_or_token_signs_no_one_in(secured, name, secret_of):
    client, made = secured
    page = sign_in(client, name, secret_of(made), status=400)
    assert 'do not match a token in use' in page.text
    client.get('/jobs', status=303)


@pytest.mark.parametrize('next_path', ['//evil.example/x',
                                       'https://evil.example/',
                                       '/\\evil.example'])
def test_signing_in_goes_back_to_this_site_only(secured, next_path):
    client, made = secured
    response = sign_in(client, *made['viewer'], next_path=next_path)
    assert response.location == 'http://localhost/'


def test_signing_out_and_a_revoked_token_end_the_session(secured):
    client, made = secured
    sign_in(client, *made['operator'])
    page = client.get('/jobs')
    page.forms[0].submit(status=303)  # the sign-out form
    client.get('/jobs', status=303)
    sign_in(client, *made['operator'])
    with transaction_of(client.app) as request:
        tokens.revoke(request.dbsession, made['operator'][0])
    client.get('/jobs', status=303)


def test_static_files_and_the_sign_in_page_need_no_token(secured):
    client, _ = secured
    client.get('/static/myapp.css', status=200)
    client.get('/login', status=200)


# -- off, as in development.ini ------------------------------------------

def test_with_access_control_off_everyone_acts(api, published):
    api.post_json('/api/jobs', ADD, status=202)
    page = api.get('/jobs')
    assert 'Start a job' in page.text and 'Sign in' not in page.text
    assert 'Access control is off' in api.get('/login').text


# -- headers ---------------------------------------------------------------

@pytest.mark.parametrize('path, status', [
    ('/jobs', 200), ('/api/jobs', 200), ('/static/jobs.js', 200),
    ('/nowhere', 404), ('/api/nowhere', 404)])
def test_every_response_has_the_security_headers(api, path, status):
    response = api.get(path, status=status)
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value


# -- myapp_tokens ------------------------------------------------------------

def test_every_view_that_acts_needs_the_operator_permission(secured):
    """Every view of a method that changes something (POST, PATCH,
    DELETE, PUT) is ``permission=OPERATE``, but signing in and out."""
    client, _ = secured
    introspector = client.app.registry.introspector
    acting = []
    for view in introspector.get_category('views'):
        item = view['introspectable']
        methods = item['request_methods'] or ()
        if isinstance(methods, str):
            methods = (methods,)
        if not {'POST', 'PATCH', 'DELETE', 'PUT'} & set(methods) \
                or item['route_name'] in ('login', 'logout'):
            continue
        permissions = [related['value'] for related in view['related']
                       if related.category_name == 'permissions']
        acting.append((item['route_name'], permissions))
    assert acting and all(permissions == ['operate']
                          for _, permissions in acting), acting
    assert 'workers.rerun' in dict(acting)


def test_myapp_tokens_makes_lists_and_revokes(secured, secured_ini, capsys):
    client, _ = secured
    myapp_tokens(['myapp_tokens', secured_ini, 'create', '--role',
                  'operator', 'ci-bot'])
    secret = capsys.readouterr().out.splitlines()[-1]
    client.get('/api/jobs', headers=bearer(secret), status=200)
    with transaction_of(client.app) as request:
        stored = tokens.by_name(request.dbsession, 'ci-bot').secret_hash
    assert secret not in stored and stored == tokens.digest(secret)

    myapp_tokens(['myapp_tokens', secured_ini, 'list'])
    listed = capsys.readouterr().out
    assert 'ci-bot\toperator\tmade ' in listed and secret not in listed

    myapp_tokens(['myapp_tokens', secured_ini, 'revoke', 'ci-bot'])
    client.get('/api/jobs', headers=bearer(secret), status=401)
    assert 'revoked' in capsys.readouterr().out
    myapp_tokens(['myapp_tokens', secured_ini, 'list'])
    assert 'ci-bot\toperator' in capsys.readouterr().out


@pytest.mark.parametrize('argv, message', [
    (['create', '--role', 'viewer', 'viewer-1'],
     'a token named "viewer-1" exists: revoke it first'),
    (['create', '--role', 'viewer', 'a b'], '"a b" is not a token name'),
    (['revoke', 'nobody'], 'no token named "nobody" is in use'),
])
def test_myapp_tokens_refuses_with_one_line(secured, secured_ini, argv,
                                            message):
    with pytest.raises(SystemExit) as exc:
        myapp_tokens(['myapp_tokens', secured_ini, *argv])
    assert str(exc.value).startswith(f'error: {message}')
