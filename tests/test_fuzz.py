"""Generated requests against the whole app (webtest), on SQLite and on
PostgreSQL: no input is a 500.

Every route, with generated methods, paths (any bytes, percent-encoded:
NUL, ``%ff``, overlong UTF-8, encoded surrogates), query strings (cursors
too), headers (``Content-Type`` variants, ``Idempotency-Key``) and bodies
(JSON nested up to 30,000 levels, numbers JSON cannot carry, odd Unicode,
wrong types, forms, multipart, random bytes).  After each request:

* no 5xx;
* under ``/api``, an error is JSON with an ``error`` message;
* a refused request (not 2xx/3xx) recorded no job, queued nothing and
  changed no periodic job (the jobs table's row count, the ``published``
  fixture, the periodic_jobs table's rows);
* a job that was started has arguments a worker can take.

Deterministic (``derandomize``), so CI runs the same requests each time.
"""
import base64
import collections
import itertools
import json
import time
import urllib.parse

import pytest
import webtest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyramid.paster import get_app
from sqlalchemy import delete, func, select

from myapp.celery_integration import celery_app
from myapp.jobs.values import MAX_JSON_DEPTH, UnfitValue, check_arguments
from myapp.models import Job, PeriodicJob
from myapp.schedules import store

from .jobs_support import transaction_of
from .support import write_ini

#: Requests per database: EXAMPLES examples of up to BATCH requests each.
EXAMPLES = 2000
BATCH = 6
MINIMUM_REQUESTS = 6000

EXPOSED = ['myapp.tasks.add', 'myapp.tasks.mul', 'myapp.tasks.xsum',
           'myapp.tasks.record_sum', 'myapp.tasks.slow_add']
STATES = ['PENDING', 'RETRY', 'STARTED', 'PROGRESS', 'SUCCESS', 'FAILURE',
          'REVOKED']


@pytest.fixture(params=['sqlite', pytest.param(
    'postgresql', marks=pytest.mark.services)])
def client(request, tmp_path, initialize_db):
    """The app on one database, its jobs table emptied; on PostgreSQL the
    results too (``/seed/add/ID`` reads them)."""
    if request.param == 'postgresql':
        request.getfixturevalue('postgres_database')
        ini = write_ini(tmp_path, broker='memory', database='postgresql',
                        backend='postgresql')
    else:
        ini = initialize_db(write_ini(tmp_path, broker='memory'))
    app = get_app(ini)
    with transaction_of(app) as each:
        # ORM statements: a Core one would not mark the session changed
        # (zope.sqlalchemy), and the transaction would roll it back.
        each.dbsession.execute(delete(Job))
        each.dbsession.execute(delete(PeriodicJob))
    yield webtest.TestApp(app)
    app.registry['dbsession_factory'].kw['bind'].dispose()


# -- what to send --------------------------------------------------------
#
# Strategies are built once, here: building them for each draw costs more
# than the requests.  What depends on the run (the jobs started so far,
# the session's CSRF token) is drawn as an index or a flag and resolved
# in the composites, so that hypothesis can replay an example.

def percent_encoded(data):
    return urllib.parse.quote_from_bytes(data, safe='')


#: Text as bytes: any Unicode, lone surrogates (encoded as UTF-8 would
#: have them), NUL, overlong and cut UTF-8, any byte.
ODD_BYTES = st.one_of(
    st.text(max_size=20).map(lambda t: t.encode('utf-8')),
    st.text(st.characters(codec=None, exclude_categories=()), max_size=8)
    .map(lambda t: t.encode('utf-8', 'surrogatepass')),
    st.sampled_from([b'\x00', b'a\x00b', b'\xff', b'\xc0\x80', b'\xed\xa0\x80',
                     b'\xed\xbf\xbf', b'\xe2\x82', b'%', b'%zz', b'..', b'/',
                     b'\xf4\x90\x80\x80', b' ', b'+', b'&', b'=', b';']),
    st.binary(max_size=12),
)
ODD_SEGMENT = ODD_BYTES.map(percent_encoded)
ODD_ID = st.one_of(ODD_SEGMENT, st.sampled_from([
    'x' * 36, 'x' * 37, 'x' * 300, '-', '0b0e8c4a-0000-4000-8000-000000000000']))
INDEX = st.integers(0, 2 ** 16)


def known_id(draw, known):
    """One of the jobs started so far, or None.  Drawn the same way however
    many there are, as hypothesis needs to replay an example."""
    index = draw(INDEX)
    return sorted(known)[index % len(known)] if known else None


@st.composite
def job_ids(draw, known):
    """A job id: one of the jobs started so far, or anything."""
    started, odd, pick = known_id(draw, known), draw(ODD_ID), draw(
        st.booleans())
    return started if started and pick else odd


FIXED_PATHS = st.sampled_from([
    '/', '/jobs', '/api/jobs', '/api/tasks', '/api/schedules', '/schedules',
    '/seed/add', '/api', '/api/', '/static/myapp.css', '/static/jobs.js',
    '/health', '/login', '/api/jobs/retry', '/api/jobs/revoke',
    '/workers', '/api/workers', '/api/queues', '/api/jobs/stuck', '/metrics',
    '/api/openapi.json'])
ID_PATHS = st.sampled_from(['/jobs/{}', '/jobs/{}/cancel', '/jobs/{}/retry',
                            '/api/jobs/{}', '/api/jobs/{}/revoke',
                            '/api/jobs/{}/retry', '/seed/add/{}',
                            '/api/groups/{}', '/groups/{}',
                            '/workers/stuck/{}/rerun'])
#: A periodic job's name: the one there is, one that fits, or anything.
SCHEDULE_NAMES = st.one_of(st.sampled_from(['daily', 'nightly', 'a.b-c_1']),
                           ODD_SEGMENT)
NAME_PATHS = st.sampled_from([
    '/api/schedules/{}', '/api/schedules/{}/run', '/schedules/{}',
    '/schedules/{}/enabled', '/schedules/{}/run', '/schedules/{}/delete'])
ODD_PATHS = st.one_of(
    st.sampled_from(['/static/{}', '/api/{}', '/{}']).flatmap(
        lambda template: ODD_SEGMENT.map(template.format)),
    st.lists(ODD_SEGMENT, min_size=1, max_size=4).map(
        lambda parts: '/' + '/'.join(parts)))


@st.composite
def paths(draw, known):
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(FIXED_PATHS)
    if kind == 1:
        return draw(ID_PATHS).format(draw(job_ids(known)))
    if kind == 2:
        return draw(NAME_PATHS).format(draw(SCHEDULE_NAMES))
    return draw(ODD_PATHS)


def cursor_of(value):
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


JSON_SCALARS = st.one_of(
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(json.dumps),
    st.sampled_from(['1e400', '-1e400', 'NaN', 'Infinity', '-Infinity',
                     '1' * 5000, '9' * 400, '1e-400', '-0', 'true', 'false',
                     'null', '"\\u0000"', '"\\ud800"', '"a\\udfffb"',
                     '"\\ud83d\\ude00"', '""']),
    st.text(max_size=20).map(json.dumps),
    st.text(max_size=8).map(lambda t: json.dumps(t, ensure_ascii=False)),
)


def json_trees(max_leaves):
    return st.recursive(JSON_SCALARS, lambda children: st.one_of(
        st.lists(children, max_size=4).map(
            lambda items: '[' + ', '.join(items) + ']'),
        st.dictionaries(st.text(max_size=6).map(json.dumps), children,
                        max_size=4).map(lambda items: '{' + ', '.join(
                            f'{key}: {value}' for key, value in
                            items.items()) + '}')),
        max_leaves=max_leaves)


DEPTHS = st.sampled_from([0, 0, 0, 1, MAX_JSON_DEPTH - 3, MAX_JSON_DEPTH - 2,
                          MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH,
                          MAX_JSON_DEPTH + 1, 100, 600, 952, 960, 970, 1200,
                          30000])


def nested_json(max_leaves=12):
    """JSON text, some of it not quite JSON: numbers JSON cannot carry,
    NUL and lone surrogates escaped, nesting at and far past the limit."""
    return st.tuples(json_trees(max_leaves), DEPTHS, st.booleans()).map(
        lambda each: ('[' * each[1] + each[0] + ']' * each[1]) if each[2]
        else ('{"a": ' * each[1] + each[0] + '}' * each[1]))


JSON_TEXTS = nested_json()
SMALL_JSON_TEXTS = nested_json(max_leaves=3)
TASKS = st.one_of(st.sampled_from(EXPOSED + ['myapp.jobs.tasks.purge_history',
                                             'celery.backend_cleanup']),
                  st.text(max_size=10)).map(json.dumps)
NUMBERS = st.lists(st.integers(-10 ** 6, 10 ** 6), min_size=2, max_size=2)
KWARGS = st.one_of(JSON_TEXTS, st.just('{"seconds": 0}'), st.just('{}'))
OPTIONS = {
    'countdown': st.one_of(st.integers(-5, 10 ** 9).map(str),
                           st.sampled_from(['1e400', '"5"', 'true', '0.5',
                                            'null'])),
    'eta': st.sampled_from(['"2030-01-01T12:00:00Z"', '"2030-01-01T12:00:00"',
                            '"tomorrow"', '"0001-01-01T00:00:00+05:00"',
                            '"9999-12-31T23:59:59-05:00"', '1',
                            '"2030-01-01T12:00:00Z\\u0000"']),
    'queue': st.one_of(st.sampled_from(['"celery"', '"a b"', '""',
                                        '"q\\u0000"', '7']),
                       st.text(max_size=8).map(json.dumps)),
    'nope': SMALL_JSON_TEXTS,
}


#: Calls that fit: xsum's list may nest up to the limit (args is level 2).
FITTING_CALLS = st.one_of(
    st.tuples(st.sampled_from(['myapp.tasks.add', 'myapp.tasks.mul',
                               'myapp.tasks.slow_add']), NUMBERS.map(
        json.dumps)),
    st.tuples(st.sampled_from(['myapp.tasks.xsum', 'myapp.tasks.record_sum']),
              NUMBERS.map(lambda numbers: json.dumps([numbers]))),
    st.tuples(st.just('myapp.tasks.xsum'), st.integers(
        0, MAX_JSON_DEPTH - 1).map(lambda depth: '[' * depth + '1' +
                                   ']' * depth)))


@st.composite
def start_bodies(draw):
    """Bodies of POST /api/jobs: right, nearly right, or wrong."""
    fields = {}
    fitting = draw(FITTING_CALLS)
    if draw(st.booleans()):
        fields['task'], fields['args'] = json.dumps(fitting[0]), fitting[1]
    else:
        if draw(st.integers(0, 9)):
            fields['task'] = draw(TASKS)
        if draw(st.booleans()):
            fields['args'] = draw(JSON_TEXTS)
    if draw(st.integers(0, 3)) == 0:
        fields['kwargs'] = draw(KWARGS)
    for name, values in OPTIONS.items():
        if draw(st.integers(0, 9)) == 0:
            fields[name] = draw(values)
    return ('{' + ', '.join(f'"{name}": {value}'
                            for name, value in fields.items()) + '}'
            ).encode('utf-8', 'surrogatepass')


START_BODIES = start_bodies()
SCHEDULE_TYPES = st.one_of(st.sampled_from(['integer', 'timedelta', 'crontab',
                                            'solar', 'clocked']),
                           st.text(max_size=8)).map(json.dumps)
SCHEDULES = st.one_of(
    st.sampled_from(['30', '0', '-1', '1e400', '{"seconds": 30}',
                     '{"minute": "*/15"}', '{"minute": "61"}',
                     '{"hour": "8", "day_of_week": "mon-fri"}',
                     '{"event": "sunset", "latitude": 35.68, '
                     '"longitude": 139.69}', '{"event": "sunset"}',
                     '{"at": "2030-01-01T08:00:00"}', '{"at": "soon"}',
                     '{"at": "2030-01-01T08:00:00\\u0000"}']),
    SMALL_JSON_TEXTS)
ZONES = st.one_of(st.sampled_from(['"Europe/Paris"', '"Europe/Pariss"',
                                   'null', '""', '7', '"UTC\\u0000"']),
                  st.text(max_size=10).map(json.dumps))
SCHEDULE_FIELDS = {
    'name': SCHEDULE_NAMES.map(json.dumps), 'task': TASKS,
    'type': SCHEDULE_TYPES, 'schedule': SCHEDULES,
    'args': st.one_of(NUMBERS.map(json.dumps), SMALL_JSON_TEXTS),
    'kwargs': KWARGS, 'timezone': ZONES,
    'enabled': st.sampled_from(['true', 'false', '1', '"no"', 'null']),
    'options': st.one_of(st.sampled_from(['{"queue": "celery"}',
                                          '{"task_id": "x"}',
                                          '{"priority": 5}']),
                         SMALL_JSON_TEXTS),
    'source': st.just('"ini"'),
}


@st.composite
def schedule_bodies(draw):
    """Bodies of POST and PATCH /api/schedules: mostly a definition that
    fits, with a field or two drawn from anything."""
    fields = {'name': json.dumps(draw(st.sampled_from(['nightly', 'daily']))),
              'task': '"myapp.tasks.add"', 'args': '[1, 2]',
              'type': '"integer"', 'schedule': '60'}
    for name, values in SCHEDULE_FIELDS.items():
        if draw(st.integers(0, 4)) == 0:
            fields[name] = draw(values)
        elif draw(st.integers(0, 9)) == 0:
            fields.pop(name, None)
    return ('{' + ', '.join(f'"{name}": {value}'
                            for name, value in fields.items()) + '}'
            ).encode('utf-8', 'surrogatepass')


SCHEDULE_BODIES = schedule_bodies()
BULK_BODIES = st.tuples(
    st.sampled_from(['"ids": ["x", "y"]', '"ids": []', '"state": "FAILURE"',
                     '"state": "PENDING", "terminate": true',
                     '"task": "myapp.tasks.add", "limit": 2',
                     '"ids": ["x"], "state": "FAILURE"', '"limit": 1e400',
                     '"before": "eA"', '"terminate": []']),
    st.sampled_from(['', ', "limit": 0', ', "limit": 100', ', "x": 1'])).map(
    lambda parts: ('{' + parts[0] + parts[1] + '}').encode())
SCHEDULE_CALLS = st.sampled_from([
    ('POST', '/api/schedules'), ('PATCH', '/api/schedules/{}'),
    ('DELETE', '/api/schedules/{}'), ('POST', '/api/schedules/{}/run'),
    ('GET', '/api/schedules/{}')])
FORM_NAMES = st.one_of(st.sampled_from([b'task', b'args', b'kwargs', b'x']),
                       ODD_BYTES)
FORM_VALUES = st.one_of(
    st.sampled_from([name.encode() for name in EXPOSED]),
    SMALL_JSON_TEXTS.map(lambda text: text.encode('utf-8', 'surrogatepass')),
    ODD_BYTES, st.sampled_from([b'[1, 2]', b'[[1, 2]]', b'']))
FORM_FIELDS = st.lists(st.tuples(FORM_NAMES, FORM_VALUES), max_size=4)


@st.composite
def form_bodies(draw, token):
    """Form fields (urlencoded), with the session's CSRF token or not."""
    fields = draw(FORM_FIELDS)
    if draw(st.integers(0, 3)):
        fields.append((b'csrf_token', token))
    return b'&'.join(percent_encoded(name).encode() + b'=' +
                     percent_encoded(value).encode()
                     for name, value in fields)


PARTS = st.lists(st.tuples(
    st.one_of(st.sampled_from([b'task', b'args', b'csrf_token']), ODD_BYTES),
    st.one_of(ODD_BYTES, st.just(None)),
    st.sampled_from([b'', b'Content-Type: text/plain; charset=nope\r\n',
                     b'Content-Type: text/plain; charset=latin-1\r\n'])),
    max_size=3)


@st.composite
def multipart_bodies(draw, token):
    """multipart/form-data with the boundary ``b``."""
    return b''.join(
        b'--b\r\nContent-Disposition: form-data; name="' + name + b'"\r\n' +
        headers + b'\r\n' + (token if value is None else value) + b'\r\n'
        for name, value, headers in draw(PARTS)) + b'--b--\r\n'


OTHER_BODIES = st.one_of(
    st.just(b''), JSON_TEXTS.map(lambda text: text.encode('utf-8',
                                                           'surrogatepass')),
    SCHEDULE_BODIES,
    st.sampled_from([b'{"terminate": true}', b'{"terminate": "yes"}', b'{}',
                     b'[]', b'null', b'{"terminate": [[[[[[]]]]]]}']),
    st.binary(max_size=64))


@st.composite
def bodies(draw, token):
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return draw(START_BODIES)
    if kind == 1:
        return draw(form_bodies(token))
    if kind == 2:
        return draw(multipart_bodies(token))
    return draw(OTHER_BODIES)


QUERY_VALUES = st.one_of(
    ODD_SEGMENT,
    st.sampled_from(STATES + EXPOSED + ['0', '1', '100', '101', '-1', '']),
    st.tuples(st.sampled_from(['2030-01-01T00:00:00+00:00', 'x',
                               '0001-01-01T00:00:00+05:00',
                               '2030-01-01T00:00:00']),
              st.text(st.characters(codec=None, exclude_categories=()),
                      max_size=40)).map(
        lambda pair: percent_encoded(base64.urlsafe_b64encode(
            json.dumps(list(pair)).encode()))),
)
QUERY_NAMES = st.one_of(st.sampled_from(['task', 'state', 'limit', 'before',
                                         'x']), ODD_SEGMENT)


@st.composite
def queries(draw, known):
    pairs = []
    for _ in range(draw(st.integers(0, 3))):
        name = draw(QUERY_NAMES)
        if draw(st.integers(0, 4)) == 0:  # a cursor the list could make
            value = cursor_of(['2030-01-01T00:00:00+00:00',
                               known_id(draw, known) or 'x'])
        else:
            value = draw(QUERY_VALUES)
        pairs.append(f'{name}={value}')
    return '&'.join(pairs)


CONTENT_TYPES = [
    'application/json', 'application/json; charset=utf-8',
    'application/json; charset=latin-1', 'APPLICATION/JSON', 'text/plain',
    'application/x-www-form-urlencoded',
    'application/x-www-form-urlencoded; charset=latin-1',
    'multipart/form-data', 'multipart/form-data; boundary=b',
    'application/json-patch+json', 'text/html', ';', 'application/json;;',
]
LATIN1_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xff,
                                    exclude_characters='\x7f'), max_size=40)
ANY_CONTENT_TYPE = st.one_of(st.none(), st.sampled_from(CONTENT_TYPES),
                             LATIN1_TEXT)
KINDS = st.sampled_from(['start', 'start', 'start', 'revoke', 'list', 'form',
                         'page', 'any', 'any', 'schedule', 'schedule'])
METHODS = st.sampled_from(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD',
                           'OPTIONS', 'GET'])
FORM_PATHS = st.sampled_from(['/jobs', '/seed/add', '/jobs/{}/cancel',
                              '/workers/stuck/{}/rerun',
                              '/schedules', '/schedules/{}',
                              '/schedules/{}/enabled', '/schedules/{}/run',
                              '/schedules/{}/delete'])
IDEMPOTENCY_KEYS = st.one_of(st.sampled_from(['order-1', 'order-2', '',
                                              ' x']), LATIN1_TEXT)
ACCEPTS = st.sampled_from(['application/json', 'text/html', '*/*',
                           'image/png'])


@st.composite
def requests(draw, known, token):
    """(method, path with its query, headers, body): aimed at a route
    (with the method and content type it reads, mostly), or anything."""
    kind = draw(KINDS)
    headers = {}
    usual = draw(st.integers(0, 5)) > 1  # the content type the route reads
    if kind == 'start':
        method, path, body = 'POST', '/api/jobs', draw(START_BODIES)
        content_type = 'application/json'
        if draw(st.integers(0, 3)) == 0:
            headers['Idempotency-Key'] = draw(IDEMPOTENCY_KEYS)
    elif kind == 'revoke':
        method = 'POST'
        path = draw(st.sampled_from([
            '/api/jobs/{}/revoke', '/api/jobs/{}/retry', '/api/jobs/retry',
            '/api/jobs/revoke'])).format(draw(job_ids(known)))
        body = draw(st.one_of(bodies(token), BULK_BODIES))
        content_type = 'application/json'
    elif kind == 'schedule':
        method, template = draw(SCHEDULE_CALLS)
        path = template.format(draw(SCHEDULE_NAMES))
        body = draw(SCHEDULE_BODIES) if method in ('POST', 'PATCH') else b''
        content_type = 'application/json'
    elif kind == 'list':
        method, path, body, content_type = 'GET', '/api/jobs', b'', None
    elif kind == 'form':
        method = 'POST'
        path = draw(FORM_PATHS)
        path = path.format(draw(SCHEDULE_NAMES) if path.startswith(
            '/schedules') else draw(job_ids(known)))
        body = draw(st.one_of(form_bodies(token), multipart_bodies(token)))
        content_type = 'application/x-www-form-urlencoded'
    else:
        method = draw(METHODS) if kind == 'any' else 'GET'
        path = draw(paths(known))
        body = draw(bodies(token)) if method != 'GET' else b''
        usual, content_type = False, None
    if not usual:
        content_type = draw(ANY_CONTENT_TYPE)
    if content_type is not None:
        headers['Content-Type'] = content_type
    if draw(st.integers(0, 4)) == 0:
        headers['Accept'] = draw(ACCEPTS)
    if draw(st.integers(0, 6)) == 0:
        headers['X-CSRF-Token'] = token.decode() if draw(st.booleans()) \
            else draw(LATIN1_TEXT)
    query = draw(queries(known)) if kind in ('list', 'page', 'any') \
        or draw(st.integers(0, 9)) == 0 else ''
    return method, path + (f'?{query}' if query else ''), headers, body


# -- the test --------------------------------------------------------------

def job_count(engine):
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(Job))


def add_daily(app):
    """The periodic job "daily", back if a request deleted it."""
    with transaction_of(app) as request:
        if store.get(request.dbsession, 'daily') is None:
            store.create(request.dbsession, celery_app, 'daily', {
                'task': 'myapp.tasks.add', 'args': [1, 2], 'type': 'crontab',
                'schedule': {'minute': '0', 'hour': '8'}})


def periodic_jobs(engine):
    """The periodic_jobs table, as rows of values."""
    with engine.connect() as connection:
        return connection.execute(
            select(PeriodicJob.__table__).order_by(PeriodicJob.name)).all()


class NoCookies:
    def add_cookie_header(self, request):
        pass

    def extract_cookies(self, response, request):
        pass


def is_api(path):
    return path == '/api' or path.startswith(('/api/', '/api?'))


def test_no_generated_request_is_a_500(client, published):
    engine = client.app.registry['dbsession_factory'].kw['bind']
    known = set()  # ids of the jobs started so far
    token = client.get('/jobs').forms[0]['csrf_token'].value.encode()
    # The session cookie goes as a header: webtest's cookie jar asks for
    # the request's URL, which WebOb cannot decode from a path like %ff.
    cookie = '; '.join(f'{each.name}={each.value}'
                       for each in client.cookiejar)
    client.cookiejar = NoCookies()
    sent = itertools.count()
    started = time.monotonic()
    jobs = [job_count(engine)]  # as of the last request
    statuses = collections.Counter()

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None,
              database=None, print_blob=True,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def check(data):
        add_daily(client.app)
        for _ in range(data.draw(st.integers(1, BATCH))):
            method, path, headers, body = data.draw(requests(known, token))
            headers['Cookie'] = cookie
            queued = len(published)
            schedules = periodic_jobs(engine) if method not in (
                'GET', 'HEAD') else None
            response = client.request(path, method=method, headers=headers,
                                      body=body, expect_errors=True)
            next(sent)
            statuses[response.status_int] += 1
            what = f'{method} {path} {headers} {body[:300]!r}'
            assert response.status_int < 500, \
                f'{what}: {response.status} {response.body[:500]!r}'
            if is_api(path) and method != 'HEAD' and \
                    response.status_int != 204:
                assert response.content_type == 'application/json', what
                if response.status_int >= 400:
                    assert isinstance(response.json['error'], str), what
            count = job_count(engine)
            if response.status_int >= 400:
                assert count == jobs[-1], f'{what}: recorded a job'
                assert len(published) == queued, f'{what}: queued a job'
                assert schedules is None or \
                    periodic_jobs(engine) == schedules, \
                    f'{what}: changed a periodic job'
            elif response.status_int == 202 and path.startswith(
                    '/api/jobs') and 'id' in response.json:
                job = response.json
                known.add(job['id'])
                try:
                    check_arguments(job['args'], job['kwargs'])
                except UnfitValue as exc:
                    raise AssertionError(f'{what}: started with {exc}')
            jobs.append(count)

    check()
    count, seconds = next(sent), time.monotonic() - started
    print(f'{count} requests in {seconds:.1f}s, {len(known)} jobs started; '
          f'answers: {dict(sorted(statuses.items()))}')
    assert count >= MINIMUM_REQUESTS
    assert known, 'no generated request started a job'
