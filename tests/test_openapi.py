"""The OpenAPI document (``GET /api/openapi.json``, :mod:`myapp.openapi`),
and the app held to it.

* the document is valid OpenAPI 3.1, with access control off and on;
* every API route (and ``/health``) is described, method by method, so a
  view added without its entry in
  :data:`myapp.openapi.operations.OPERATIONS` fails here;
* schemathesis sends generated requests, valid and not, to every
  operation of the app (in this process, over WSGI, on the in-memory
  broker: no worker) and checks each answer: no 5xx, a status the
  operation documents, its media type, its schema and its required
  headers, and under ``/api`` a 405 with ``Allow`` for a method the path
  does not take;
* with access control on, smaller runs without a token, with a viewer's
  and with an operator's: 401 and 403 come where the document says, and
  only there.

Deterministic (``derandomize``, a fixed seed): the same requests each run.
"""
import pytest
import schemathesis
import webtest
from hypothesis import HealthCheck, settings
from pyramid.paster import get_app
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance,
                                               response_headers_conformance,
                                               response_schema_conformance,
                                               status_code_conformance,
                                               unsupported_method)

from myapp import tokens
from myapp.jobs.inputs import FILTER_FIELDS
from myapp.models import AccessToken, Job
from myapp.models.job import FAILURE
from myapp.openapi.schemas import EXAMPLE_JOB_ID, FILTER_PROPERTIES

from .jobs_support import transaction_of
from .support import write_ini

DOCUMENT = '/api/openapi.json'
#: Routes whose views another change is adding, not described yet.
#: Remove each as its entry lands in myapp.openapi.operations.
PENDING = set()
#: The answer as the document says: its status, media type, schema and
#: required headers; never a 5xx.
CONFORMANCE = [not_a_server_error, status_code_conformance,
               content_type_conformance, response_schema_conformance,
               response_headers_conformance]
#: Requests per operation (besides schemathesis' coverage cases).
EXAMPLES = 30
SMALL_RUN = 8


def fetch_document(app, **headers):
    return webtest.TestApp(app).get(DOCUMENT, headers=headers,
                                    status=200).json


@pytest.fixture(scope='module')
def secured_ini(tmp_path_factory, initialize_db):
    """Access control on, on the in-memory broker."""
    return initialize_db(write_ini(tmp_path_factory.mktemp('secured'),
                                   broker='memory', app='auth.enabled = true'))


@pytest.fixture
def secured(secured_ini):
    """(the app with access control on, {role: secret})."""
    app = get_app(secured_ini)
    with transaction_of(app) as request:
        for table in ('jobs', 'periodic_jobs', 'access_tokens'):
            request.dbsession.execute(
                AccessToken.metadata.tables[table].delete())
        secrets = {role: tokens.create(request.dbsession, f'{role}-1', role)
                   for role in ('viewer', 'operator')}
    yield app, secrets
    app.registry['dbsession_factory'].kw['bind'].dispose()


# -- the document --------------------------------------------------------

def test_the_document_is_valid_openapi_3_1(app):
    response = webtest.TestApp(app).get(DOCUMENT, status=200)
    assert response.content_type == 'application/json'
    document = response.json
    assert document['openapi'].startswith('3.1.')
    schemathesis.openapi.from_dict(document).validate()  # its meta-schema


def test_with_access_control_on_it_says_who_may_do_what(secured):
    app, secrets = secured
    document = fetch_document(app)  # no token needed to read it
    schemathesis.openapi.from_dict(document).validate()
    paths = document['paths']
    look, act = paths['/api/jobs']['get'], paths['/api/jobs']['post']
    assert look['security'] == act['security'] == [{'bearer': []}]
    assert '401' in look['responses'] and '403' not in look['responses']
    assert {'401', '403'} <= set(act['responses'])
    for anyones in (DOCUMENT, '/health', '/metrics'):
        assert 'security' not in paths[anyones]['get']
        assert '401' not in paths[anyones]['get']['responses']


def test_with_access_control_off_no_operation_needs_a_token(app):
    for operations in fetch_document(app)['paths'].values():
        for operation in operations.values():
            assert 'security' not in operation
            assert {'401', '403'}.isdisjoint(operation['responses'])


def test_the_server_is_the_apps_address_never_the_requests_host(app):
    client = webtest.TestApp(app)
    assert client.get(DOCUMENT, headers={'Host': 'evil.example'}).json[
        'servers'] == [{'url': '/'}]
    mounted = client.get(DOCUMENT, extra_environ={'SCRIPT_NAME': '/jobs'})
    assert mounted.json['servers'] == [{'url': '/jobs'}]
    app.registry.settings['myapp.url'] = 'https://jobs.example.com/'
    assert client.get(DOCUMENT).json['servers'] == [
        {'url': 'https://jobs.example.com'}]


def test_the_tasks_a_client_may_start_are_the_exposed_ones(app):
    schema = fetch_document(app)['components']['schemas']['ExposedTask']
    tasks = webtest.TestApp(app).get('/api/tasks').json['tasks']
    assert schema['enum'] == [task['name'] for task in tasks]


def test_the_list_filters_are_the_apps():
    assert list(FILTER_PROPERTIES) == list(FILTER_FIELDS)


def api_views(app):
    """``{(route name, path): {METHOD, ...}}`` of the views on the API's
    routes and /health (an empty set: a route with no view yet)."""
    introspector = app.registry.introspector
    found = {}
    for route in introspector.get_category('routes'):
        route = route['introspectable']
        if not (route['pattern'].startswith('/api/')
                or route['pattern'] == '/health'):
            continue
        methods = found.setdefault((route['name'], route['pattern']), set())
        for related in introspector.related(route):
            if related.category_name == 'views':
                taken = related['request_methods'] or ()
                methods.update([taken] if isinstance(taken, str) else taken)
    return found


def test_every_api_route_and_method_is_documented(app):
    paths = fetch_document(app)['paths']
    missing = []
    for (name, path), methods in sorted(api_views(app).items()):
        documented = {method.upper() for method in paths.get(path, {})}
        if name not in PENDING and (not methods or methods - documented):
            missing.append(f'{name} {path} {sorted(methods - documented)}')
    assert missing == [], ('describe them in myapp.openapi.operations.'
                           f'OPERATIONS: {missing}')


def test_the_pending_routes_are_still_pending(app):
    """A pending route, once described, leaves :data:`PENDING`."""
    paths = fetch_document(app)['paths']
    described = {name for name, path in api_views(app) if path in paths}
    assert PENDING & described == set(), 'remove them from PENDING'


# -- the app, held to the document -----------------------------------------

def schemathesis_config(mode='all', nul=True):
    """Valid and invalid requests (``mode``), the same each run; no
    Authorization header made up (the tests say which token to send)."""
    return schemathesis.Config.from_dict({
        'seed': 20261206,
        'generation': {'mode': mode, 'deterministic': True,
                       'database': 'none', 'allow-x00': nul,
                       'with-security-parameters': False},
    })


def bounded(max_examples):
    """Hypothesis settings: the same examples each run, this many."""
    return settings(max_examples=max_examples, derandomize=True,
                    database=None, deadline=None, print_blob=False,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large])


@pytest.fixture(autouse=True)
def node_id_for_schemathesis(request):
    """schemathesis 4.32 (its ``from_fixture`` schemas) reads and sets
    pytest's private ``Node._nodeid``, which pytest 9.2 no longer has."""
    if not hasattr(request.node, '_nodeid'):
        request.node._nodeid = request.node.nodeid


def make_example_job(app):
    """The failed job the document's examples name, so that they reach a
    job (retry it, revoke it, show it) rather than a 404."""
    with transaction_of(app) as request:
        request.dbsession.add(Job(
            id=EXAMPLE_JOB_ID, task_name='myapp.tasks.add', args=[5, 10],
            kwargs={}, options={}, state=FAILURE, origin='http',
            error_type='TypeError', error_message='an example'))


@pytest.fixture
def open_schema(app):
    """The document of the app with access control off (the tests'
    default): every operation is reachable."""
    make_example_job(app)
    return schemathesis.openapi.from_wsgi(DOCUMENT, app,
                                          config=schemathesis_config())


def checks_for(case):
    """:data:`CONFORMANCE`; under /api, 405 with Allow for a method a path
    does not take (what the API promises; /health and /metrics answer the
    pages' 404 there)."""
    if case.operation.path.startswith('/api/'):
        return CONFORMANCE + [unsupported_method]
    return CONFORMANCE


open_api = schemathesis.pytest.from_fixture('open_schema')


@bounded(EXAMPLES)
@open_api.parametrize()
def test_every_operation_answers_as_the_document_says(case):
    case.call_and_validate(checks=checks_for(case))


# -- access control on: 401 and 403 where the document says ----------------

@pytest.fixture
def secured_schema(secured):
    """The document of the app with access control on.  Valid requests
    only, and no NUL, which the app refuses (400) before it asks who is
    there: what these runs check is who may."""
    app, secrets = secured
    make_example_job(app)
    return schemathesis.openapi.from_wsgi(
        DOCUMENT, app, config=schemathesis_config('positive', nul=False))


def documented(case):
    """The statuses the case's operation documents."""
    return set(case.operation.definition.raw['responses'])


def asks_its_own_method(case):
    """Not one of the methods schemathesis tries that the path does not
    take (405 there, before any permission is checked)."""
    return case.method.upper() == case.operation.method.upper()


def status_as(case, secret=None):
    """The status of the case sent with this token (or none), its answer
    checked against the document as in the run above."""
    headers = {} if secret is None else {'Authorization': f'Bearer {secret}'}
    return case.call_and_validate(headers=headers,
                                  checks=checks_for(case)).status_code


secured_api = schemathesis.pytest.from_fixture('secured_schema')


@bounded(SMALL_RUN)
@secured_api.parametrize()
def test_without_a_token_only_what_anyone_may_do_is_done(case):
    status = status_as(case)
    if asks_its_own_method(case):
        assert (status == 401) == ('401' in documented(case)), status


@bounded(SMALL_RUN)
@secured_api.parametrize()
def test_a_viewer_looks_and_is_refused_what_acts(case, secured):
    status = status_as(case, secured[1]['viewer'])
    if asks_its_own_method(case):
        assert status != 401
        assert (status == 403) == ('403' in documented(case)), status


@bounded(SMALL_RUN)
@secured_api.parametrize()
def test_an_operator_may_do_everything(case, secured):
    assert status_as(case, secured[1]['operator']) not in (401, 403)


# -- what writing the document found ---------------------------------------

@pytest.mark.parametrize('query', [
    'after=0001-01-01T00:00:00%2B05:00', 'until=9999-12-31T23:59:59-05:00'])
def test_a_filter_time_utc_cannot_hold_is_a_400_not_a_500(api, query):
    """Such a time reached the database's UTC conversion (a 500)."""
    refused = api.get(f'/api/jobs?{query}', status=400).json
    assert refused['error'] == f'invalid "{query.partition("=")[0]}"'
    api.post_json('/api/jobs/revoke', {'after': '9999-12-31T23:59:59-05:00'},
                  status=400)


@pytest.mark.parametrize('kind, schedule', [
    ('integer', 1e12),
    ('timedelta', {'days': 10 ** 9}),
    ('clocked', {'at': '0001-01-01T00:00:00+05:00'}),
    ('solar', {'event': 'sunset', 'latitude': False, 'longitude': 0}),
])
def test_a_schedule_its_type_does_not_take_is_a_400(api, kind, schedule):
    response = api.post_json('/api/schedules', {
        'name': 'far-off', 'task': 'myapp.tasks.add', 'args': [1, 2],
        'type': kind, 'schedule': schedule}, expect_errors=True)
    assert response.status_int == 400, response.body
    assert response.json['error'] == 'invalid "schedule"'
