"""The periodic jobs API over HTTP (webtest): list, add, show, change,
delete and run now; every refusal, and that a refusal stores and sends
nothing.

No worker or beat runs here (the broker is kombu's in-memory one); the
ini's sections reach the table as beat would put them there
(``store.synchronise_ini``).
"""
import datetime
import zoneinfo

import pytest
import webtest

from myapp.celery_integration import celery_app
from myapp.jobs.exposure import exposed_tasks
from myapp.models import PeriodicJob
from myapp.schedules import store

from .jobs_support import (all_jobs, clean_schedules_app, load_job,
                           transaction_of)
from .support import write_ini

PARIS = zoneinfo.ZoneInfo('Europe/Paris')
DAILY = {'name': 'daily', 'task': 'myapp.tasks.add', 'args': [5, 10],
         'kwargs': {}, 'type': 'crontab',
         'schedule': {'minute': '0', 'hour': '8'},
         'timezone': 'Europe/Paris', 'enabled': True}


@pytest.fixture
def app(schedules_app):
    """conftest's ``api`` client takes this app: the schedules'."""
    return schedules_app


def stored_schedules(app):
    """{name: row} of the table, as committed."""
    with transaction_of(app) as request:
        rows = store.all_jobs(request.dbsession)
        request.dbsession.expunge_all()
        return {row.name: row for row in rows}


def create(api, body=DAILY, status=201, **kwargs):
    return api.post_json('/api/schedules', body, status=status, **kwargs)


def refused(api, method, path, body, status=400, **kwargs):
    """A request that fails: a JSON error, and nothing stored or sent."""
    before = stored_schedules(api.app)
    jobs_before = len(all_jobs(api.app))
    if isinstance(body, (bytes, str)):
        response = api.request(path, method=method, body=body.encode()
                               if isinstance(body, str) else body,
                               status=status, **kwargs)
    else:
        response = getattr(api, f'{method.lower()}_json')(
            path, body, status=status, **kwargs)
    assert response.content_type == 'application/json'
    assert set(response.json) == {'error', 'detail'}
    after = stored_schedules(api.app)
    assert after.keys() == before.keys()
    for name, row in after.items():
        assert (row.task, row.args, row.kwargs, row.type, row.schedule,
                row.timezone, row.enabled, row.options) == \
            (before[name].task, before[name].args, before[name].kwargs,
             before[name].type, before[name].schedule,
             before[name].timezone, before[name].enabled,
             before[name].options)
    assert len(all_jobs(api.app)) == jobs_before
    return response.json


def moment(text):
    return datetime.datetime.fromisoformat(text)


def now():
    return datetime.datetime.now(datetime.timezone.utc)


# -- listing ---------------------------------------------------------------

def test_the_list_is_the_table_sorted_by_name(api):
    schedules = api.get('/api/schedules', status=200).json['schedules']
    # (Celery's own cleanup of the result backend is not in the table.)
    assert [s['name'] for s in schedules] == \
        ['paused', 'purge', 'tick']
    tick = schedules[2]
    assert {k: tick[k] for k in ('task', 'args', 'kwargs', 'type',
                                 'definition', 'options', 'schedule',
                                 'timezone', 'enabled', 'source',
                                 'total_runs', 'last_run', 'last_run_at')} \
        == {'task': 'myapp.tasks.add', 'args': [1, 2], 'kwargs': {},
            'type': 'integer', 'definition': 60, 'options': {},
            'schedule': 'every minute', 'timezone': 'Asia/Tokyo',
            'enabled': True, 'source': 'ini', 'total_runs': 0,
            'last_run': None, 'last_run_at': None}
    # Beat counts from the job's creation until it first runs.
    created = moment(tick['created_at'])
    assert moment(tick['next_run_at']) == \
        created + datetime.timedelta(seconds=60)
    assert created.utcoffset() == datetime.timedelta(hours=9)
    assert schedules[0]["enabled"] is False
    assert schedules[0]["next_run_at"] is None


def test_a_row_beat_would_refuse_does_not_break_the_list(api):
    """Rows may be written in SQL too."""
    with transaction_of(api.app) as request:
        request.dbsession.add(PeriodicJob(
            name='broken', task='myapp.tasks.add', args=[1, 2], kwargs={},
            options={}, type='crontab', schedule={'minute': '99'},
            timezone='Nowhere/City', source='api', total_runs=0))
    broken = {s['name']: s for s in
              api.get('/api/schedules').json['schedules']}['broken']
    assert broken['schedule'].startswith('not a valid crontab schedule')
    assert broken['next_run_at'] is None
    assert api.get('/schedules', status=200)


# -- adding ----------------------------------------------------------------

def test_post_stores_the_job_and_answers_201_with_its_address(api):
    response = create(api)
    assert response.headers['Location'] == '/api/schedules/daily'
    shown = response.json
    assert {k: shown[k] for k in DAILY if k != 'schedule'} == \
        {k: DAILY[k] for k in DAILY if k != 'schedule'}
    assert (shown['source'], shown['type'], shown['total_runs'],
            shown['last_run']) == ('api', 'crontab', 0, None)
    assert shown['definition'] == {'minute': '0', 'hour': '8'}
    assert shown['schedule'] == 'at 08:00 every day, Europe/Paris'
    # Next at 08:00 in Paris, within a day, shown in Paris time.
    next_run = moment(shown['next_run_at'])
    assert next_run.utcoffset() == next_run.astimezone(PARIS).utcoffset()
    assert next_run.timetz().replace(tzinfo=None) == datetime.time(8, 0)
    assert now() < next_run <= now() + datetime.timedelta(days=1)
    assert moment(shown['created_at']).utcoffset() == \
        moment(shown['created_at']).astimezone(PARIS).utcoffset()
    row = stored_schedules(api.app)['daily']
    assert (row.source, row.task, row.timezone, row.schedule) == \
        ('api', 'myapp.tasks.add', 'Europe/Paris',
         {'minute': '0', 'hour': '8'})
    assert api.get('/api/schedules/daily').json == shown


def test_location_is_absolute_from_the_configured_app_url(
        tmp_path, initialize_db):
    ini = initialize_db(write_ini(tmp_path, broker='memory',
                                  app='myapp.url = https://example.com/app'))
    client = webtest.TestApp(clean_schedules_app(ini))
    response = create(client, headers={'Host': 'localhost:6666'})
    assert response.headers['Location'] == \
        'https://example.com/app/api/schedules/daily'
    client.app.registry['dbsession_factory'].kw['bind'].dispose()


def test_a_job_without_a_zone_counts_in_the_apps(api):
    shown = create(api, dict(DAILY, name='every-30s', type='integer',
                             schedule=30, timezone=None)).json
    assert shown['timezone'] == 'Asia/Tokyo'
    assert shown['schedule'] == 'every 30 seconds'
    created = moment(shown['created_at'])
    assert created.utcoffset() == datetime.timedelta(hours=9)
    assert moment(shown['next_run_at']) == \
        created + datetime.timedelta(seconds=30)
    assert stored_schedules(api.app)['every-30s'].timezone is None


def test_a_disabled_job_has_no_next_run(api):
    shown = create(api, dict(DAILY, enabled=False)).json
    assert shown['enabled'] is False and shown['next_run_at'] is None


def test_options_are_kept_and_optional_fields_default(api):
    shown = create(api, {'name': 'minimal', 'task': 'myapp.tasks.xsum',
                         'args': [[1, 2]], 'type': 'timedelta',
                         'schedule': {'minutes': 5},
                         'options': {'queue': 'reports'}}).json
    assert (shown['kwargs'], shown['options'], shown['enabled'],
            shown['schedule']) == ({}, {'queue': 'reports'}, True,
                                   'every 5 minutes')


def test_a_clocked_job_runs_once(api):
    later = create(api, dict(DAILY, name='later', type='clocked',
                             schedule={'at': '2099-12-24T08:00:00'})).json
    assert later['next_run_at'] == '2099-12-24T08:00:00.000+01:00'
    assert later['schedule'] == 'once at 2099-12-24 08:00, Europe/Paris'
    # Past and never run: due now.
    missed = create(api, dict(DAILY, name='missed', type='clocked',
                              schedule={'at': '2020-01-01T00:00:00'})).json
    assert abs(moment(missed['next_run_at']) - now()) < \
        datetime.timedelta(seconds=60)
    with transaction_of(api.app) as request:
        store.get(request.dbsession, 'missed').last_run_at = now()
    assert api.get('/api/schedules/missed').json['next_run_at'] is None


NOT_EXPOSED = 'myapp.jobs.tasks.purge_history'


@pytest.mark.parametrize('change, error, detail_has', [
    ({'task': 'myapp.tasks.nothing'}, 'invalid "task"', 'cannot be started'),
    ({'task': NOT_EXPOSED, 'args': [], 'kwargs': {'older_than_days': 3}},
     'invalid "task"', 'cannot be started'),
    ({'task': ''}, 'invalid "task"', 'missing'),
    ({'args': [1]}, 'invalid "args"', 'do not fit'),
    ({'args': [1, 2, 3]}, 'invalid "args"', 'do not fit'),
    ({'task': 'myapp.tasks.slow_add', 'args': ['one', 2]}, 'invalid "args"',
     'expected float'),
    ({'kwargs': {'z': 1}}, 'invalid "kwargs"', 'do not fit'),
    ({'schedule': {'minute': '61'}}, 'invalid "schedule"', 'minute "61"'),
    ({'schedule': {'hour': '8', 'minutes': '0'}}, 'invalid "schedule"',
     'did you mean "minute"'),
    ({'schedule': None}, 'invalid "schedule"', 'missing'),
    ({'timezone': 'Europe/Pariss'}, 'invalid "timezone"',
     'did you mean "Europe/Paris"'),
    ({'timezone': 9}, 'invalid "timezone"', 'must be a string'),
    ({'type': 'weekly'}, 'invalid "type"', 'unknown schedule type'),
    ({'type': 7}, 'invalid "type"', 'must be a string'),
    ({'type': 'integer', 'schedule': '30'}, 'invalid "schedule"',
     'greater than zero'),
    ({'type': 'integer', 'schedule': -5}, 'invalid "schedule"',
     'greater than zero'),
    ({'type': 'clocked', 'schedule': {'at': 'Christmas'}},
     'invalid "schedule"', 'not an ISO 8601 time'),
    ({'args': {'x': 1}}, 'invalid "args"', 'must be a JSON list'),
    ({'kwargs': [1]}, 'invalid "kwargs"', 'must be a JSON object'),
    ({'enabled': 'yes'}, 'invalid "enabled"', 'true or false'),
    ({'options': {'task_id': 'x'}}, 'invalid "options"', 'every run'),
    ({'options': {'queeu': 'x'}}, 'invalid "options"', 'queue'),
    ({'options': []}, 'invalid "options"', 'must be a JSON object'),
    ({'args': ['\u0000']}, 'invalid "args"', 'NUL'),
])
def test_an_invalid_definition_is_400_naming_the_field(
        api, published, change, error, detail_has):
    body = dict(DAILY, **change)
    problem = refused(api, 'POST', '/api/schedules', body)
    assert problem['error'] == error
    assert detail_has in str(problem['detail'])
    assert 'daily' not in stored_schedules(api.app)
    assert published == []


def test_a_task_that_is_not_exposed_lists_those_that_are(api):
    problem = refused(api, 'POST', '/api/schedules',
                      dict(DAILY, task=NOT_EXPOSED, args=[],
                           kwargs={'older_than_days': 1}))
    assert problem['detail']['available'] == \
        sorted(exposed_tasks(api.app.registry))
    assert 'myapp.tasks.add' in problem['detail']['available']


@pytest.mark.parametrize('name', [None, '', 'with space', 'x' * 201,
                                  'slash/ed', 'é', 7, ['daily']])
def test_a_bad_name_is_400(api, name):
    body = dict(DAILY, name=name)
    if name is None:
        del body['name']
    problem = refused(api, 'POST', '/api/schedules', body)
    assert problem['error'] == 'invalid "name"'


def test_a_name_may_be_200_characters_of_letters_digits_and_dots(api):
    name = 'a.b-c_D9' * 25
    assert create(api, dict(DAILY, name=name)).headers['Location'] == \
        f'/api/schedules/{name}'


@pytest.mark.parametrize('name', ['tick', 'daily'])
def test_an_existing_name_is_409_naming_it(api, name):
    create(api)
    problem = refused(api, 'POST', '/api/schedules', dict(DAILY, name=name,
                                                          args=[7, 7]),
                      status=409)
    assert problem['error'] == f'a periodic job named "{name}" already exists'


def test_two_requests_for_one_name_one_is_409(
        tmp_path, initialize_db, monkeypatch):
    """The look-up found no job, but a concurrent request's insert wins:
    the insert's conflict is the same 409, not a 500, even without
    retries (retry.attempts = 1)."""
    ini = initialize_db(write_ini(tmp_path, broker='memory',
                                  app='retry.attempts = 1'))
    client = webtest.TestApp(clean_schedules_app(ini))
    create(client)
    looked_up = []
    real_get = store.get

    def missed_once(dbsession, name):
        looked_up.append(name)
        return None if len(looked_up) == 1 else real_get(dbsession, name)

    monkeypatch.setattr(store, 'get', missed_once)
    problem = create(client, dict(DAILY, args=[7, 7]), status=409).json
    assert problem['error'] == 'a periodic job named "daily" already exists'
    assert looked_up == ['daily']
    client.app.registry['dbsession_factory'].kw['bind'].dispose()


@pytest.mark.parametrize('body, error', [
    (dict(DAILY, every=60), 'unknown fields in the body'),
    (dict(DAILY, source='ini'), 'unknown fields in the body'),
    ([DAILY], 'the body must be a JSON object'),
    ('{"name": "daily",', 'the body is not JSON'),
    ('{"name": "daily", "schedule": NaN}', 'the body is not JSON'),
])
def test_a_body_that_is_not_a_definition_is_400(api, body, error):
    problem = refused(api, 'POST', '/api/schedules', body,
                      content_type='application/json')
    assert problem['error'] == error


@pytest.mark.parametrize('content_type', ['application/x-www-form-urlencoded',
                                          'text/plain', None])
def test_a_post_must_be_declared_json(api, content_type):
    """What another site can make a browser send: 415."""
    headers = {'Content-Type': content_type} if content_type else {}
    problem = refused(api, 'POST', '/api/schedules',
                      '{"name": "daily"}', status=415, headers=headers)
    assert problem['error'] == 'the body must be sent as application/json'


# -- one job ---------------------------------------------------------------

def test_get_one_and_404(api):
    assert api.get('/api/schedules/tick').json['name'] == 'tick'
    problem = api.get('/api/schedules/nope', status=404).json
    assert problem == {'error': 'no such periodic job',
                       'detail': {'name': 'nope'}}


@pytest.mark.parametrize('method', ['PUT', 'POST'])
def test_other_methods_are_405(api, method):
    response = api.request('/api/schedules/tick', method=method,
                           body=b'{}', content_type='application/json',
                           status=405)
    assert response.headers['Allow'] == 'DELETE, GET, HEAD, PATCH'


# -- changing --------------------------------------------------------------

def test_patch_changes_the_fields_sent(api):
    create(api)
    before = stored_schedules(api.app)['daily']
    shown = api.patch_json('/api/schedules/daily', {
        'schedule': {'minute': '15', 'hour': '9'}, 'timezone': 'Asia/Tokyo',
        'args': [1, 1]}, status=200).json
    assert shown['schedule'] == 'at 09:15 every day, Asia/Tokyo'
    assert shown['next_run_at'].endswith('T09:15:00.000+09:00')
    assert (shown['args'], shown['task'], shown['enabled']) == \
        ([1, 1], 'myapp.tasks.add', True)
    row = stored_schedules(api.app)['daily']
    assert (row.schedule, row.timezone, row.args) == \
        ({'minute': '15', 'hour': '9'}, 'Asia/Tokyo', [1, 1])
    assert row.changed_at > before.changed_at
    assert row.created_at == before.created_at


def test_patch_can_disable_and_enable(api):
    create(api)
    shown = api.patch_json('/api/schedules/daily', {'enabled': False}).json
    assert shown['enabled'] is False and shown['next_run_at'] is None
    assert stored_schedules(api.app)['daily'].enabled is False
    shown = api.patch_json('/api/schedules/daily', {'enabled': True}).json
    assert shown['enabled'] is True and shown['next_run_at'] is not None


@pytest.mark.parametrize('body, error', [
    ({'task': NOT_EXPOSED, 'args': [], 'kwargs': {'older_than_days': 3}},
     'invalid "task"'),
    ({'args': ['one', 'two', 'three']}, 'invalid "args"'),
    ({'schedule': {'hour': '25'}}, 'invalid "schedule"'),
    ({'type': 'integer'}, 'invalid "schedule"'),  # a crontab's schedule
    ({'timezone': 'Mars/Olympus'}, 'invalid "timezone"'),
    ({'name': 'renamed'}, 'unknown fields in the body'),
])
def test_a_bad_patch_is_400_and_changes_nothing(api, body, error):
    create(api)
    problem = refused(api, 'PATCH', '/api/schedules/daily', body)
    assert problem['error'] == error


def test_a_patch_of_an_unexposed_call_made_in_sql_may_leave_it(api):
    """The rule is for a call changed over HTTP: switching off a job made
    in SQL with a task that is not exposed is fine."""
    with transaction_of(api.app) as request:
        store.create(request.dbsession, celery_app, 'by-sql',
                     {'task': NOT_EXPOSED, 'type': 'integer',
                      'schedule': 60, 'kwargs': {'older_than_days': 3}})
    assert api.patch_json('/api/schedules/by-sql', {
        'enabled': False, 'task': NOT_EXPOSED}).json['enabled'] is False


def test_an_ini_job_may_be_disabled_and_enabled(api):
    shown = api.patch_json('/api/schedules/tick', {'enabled': False}).json
    assert (shown['enabled'], shown['next_run_at'], shown['source']) == \
        (False, None, 'ini')
    assert stored_schedules(api.app)['tick'].enabled is False
    shown = api.patch_json('/api/schedules/paused', {'enabled': True}).json
    assert shown['enabled'] is True and shown['next_run_at'] is not None


@pytest.mark.parametrize('body', [
    {'args': [2, 2]},
    {'schedule': 5},
    {'enabled': False, 'timezone': 'Europe/Paris'},
    {'task': 'myapp.tasks.mul'},
])
def test_the_rest_of_an_ini_job_is_the_ini_s(api, body):
    problem = refused(api, 'PATCH', '/api/schedules/tick', body, status=409)
    assert problem['error'].startswith(
        'defined in the ini section [celerybeat:tick]: change ')
    assert problem['detail']['section'] == 'celerybeat:tick'
    assert set(problem['detail']['fields']) == set(body) - {'enabled'}


def test_patch_404_and_415(api):
    refused(api, 'PATCH', '/api/schedules/nope', {'enabled': False},
            status=404)
    refused(api, 'PATCH', '/api/schedules/tick', 'enabled=false',
            status=415,
            headers={'Content-Type': 'application/x-www-form-urlencoded'})


# -- deleting --------------------------------------------------------------

def test_delete_removes_a_job_made_over_http(api):
    create(api)
    response = api.delete('/api/schedules/daily', status=204)
    assert response.body == b''
    assert 'daily' not in stored_schedules(api.app)
    api.get('/api/schedules/daily', status=404)


def test_an_ini_job_cannot_be_deleted(api):
    problem = refused(api, 'DELETE', '/api/schedules/tick', b'', status=409)
    assert problem == {
        'error': 'defined in the ini section [celerybeat:tick]: remove the '
                 'section there to delete it',
        'detail': {'section': 'celerybeat:tick'}}


def test_delete_404(api):
    refused(api, 'DELETE', '/api/schedules/nope', b'', status=404)


# -- running now -----------------------------------------------------------

def run(api, name, status=202, **kwargs):
    return api.post(f'/api/schedules/{name}/run', status=status,
                    content_type='application/json', **kwargs)


def test_run_now_sends_a_run_answered_like_post_api_jobs(api, published):
    create(api, dict(DAILY, options={'queue': 'reports'}))
    response = run(api, 'daily')
    job = response.json
    assert response.headers['Location'] == f'/api/jobs/{job["id"]}'
    assert (job['task'], job['args'], job['kwargs'], job['origin'],
            job['state'], job['queue']) == \
        ('myapp.tasks.add', [5, 10], {}, 'beat:daily', 'PENDING', 'reports')
    assert published == [job['id']]
    assert load_job(api.app, job['id']).origin == 'beat:daily'
    assert api.get(f'/api/jobs/{job["id"]}').json['id'] == job['id']
    # The history shows it as its last run; beat's count is beat's.
    shown = api.get('/api/schedules/daily').json
    assert shown['last_run']['job'] == job['id']
    assert (shown['total_runs'], shown['last_run_at']) == (0, None)


@pytest.mark.parametrize('name, task', [
    ('paused', 'myapp.tasks.add'),           # disabled
    ('purge', NOT_EXPOSED),                  # the ini's choice
])
def test_run_now_runs_any_job_of_the_table(api, published, name, task):
    job = run(api, name).json
    assert (job['task'], job['origin']) == (task, f'beat:{name}')
    assert published == [job['id']]


def test_run_now_may_have_an_empty_json_object_as_body(api, published):
    job = run(api, 'tick', params=b'{}').json
    assert published == [job['id']]


@pytest.mark.parametrize('path, body, headers, status', [
    ('/api/schedules/nope/run', b'', {'Content-Type': 'application/json'},
     404),
    ('/api/schedules/tick/run', b'', {'Content-Type': 'text/plain'}, 415),
    ('/api/schedules/tick/run', b'now=1',
     {'Content-Type': 'application/x-www-form-urlencoded'}, 415),
    ('/api/schedules/tick/run', b'{"now": true}',
     {'Content-Type': 'application/json'}, 400),
])
def test_a_refused_run_sends_nothing(api, published, path, body, headers,
                                     status):
    refused(api, 'POST', path, body, status=status, headers=headers)
    assert published == []


def test_run_now_of_a_task_beat_sends_without_a_job_is_409(api, published):
    """Celery's own tasks leave no job to show: beat sends them."""
    with transaction_of(api.app) as request:
        request.dbsession.add(PeriodicJob(
            name='cleanup', task='celery.backend_cleanup', args=[],
            kwargs={}, options={}, type='integer', schedule=60,
            source='api', total_runs=0))
    problem = refused(api, 'POST', '/api/schedules/cleanup/run',
                      b'', status=409,
                      headers={'Content-Type': 'application/json'})
    assert problem['error'].startswith('task "celery.backend_cleanup" is')
    assert published == []


def test_run_now_of_a_task_gone_from_the_code_is_409(api, published):
    with transaction_of(api.app) as request:
        request.dbsession.add(PeriodicJob(
            name='gone', task='myapp.tasks.removed', args=[], kwargs={},
            options={}, type='integer', schedule=60, source='api',
            total_runs=0))
    problem = refused(api, 'POST', '/api/schedules/gone/run', b'',
                      status=409,
                      headers={'Content-Type': 'application/json'})
    assert 'no task named "myapp.tasks.removed"' in problem['error']
    assert published == []
