"""``GET /health``: 200 when the database, the broker and the result
backend answer; 503, saying which and why, when one does not; open or
behind a token as ``monitoring.open`` says."""
import time

import pytest
import webtest
from pyramid.paster import get_app

from myapp.monitoring import health

from .support import write_ini


def test_all_three_answer(api):
    response = api.get('/health', status=200)
    assert response.json['status'] == 'ok'
    assert set(response.json['checks']) == {'database', 'broker',
                                            'result_backend'}
    for check in response.json['checks'].values():
        assert check['ok'] is True and check['ms'] >= 0
    assert response.headers['Cache-Control'] == 'no-store'


def test_a_broker_that_refuses_is_503_naming_it(tmp_path, initialize_db):
    # A closed localhost port; the password must not be shown.
    ini = initialize_db(write_ini(
        tmp_path, broker='amqp://guest:s3cret@127.0.0.1:9//'))
    app = get_app(ini)
    response = webtest.TestApp(app).get('/health', status=503)
    assert response.json['status'] == 'failing'
    broker = response.json['checks']['broker']
    assert broker['ok'] is False and broker['error']
    assert 's3cret' not in response.text
    assert response.json['checks']['database']['ok'] is True
    app.registry['dbsession_factory'].kw['bind'].dispose()


def test_a_check_that_hangs_is_503_in_bounded_time(api, monkeypatch):
    monkeypatch.setattr(health, 'CHECK_SECONDS', 0.5)
    monkeypatch.setitem(health.CHECKS, 'database',
                        lambda request: time.sleep(3))
    started = time.monotonic()
    response = api.get('/health', status=503)
    assert time.monotonic() - started < 2
    assert response.json['checks']['database'] == {
        'ok': False, 'error': 'no answer in 0.5 s', 'ms': 500.0}


@pytest.mark.parametrize('open_setting, status', [('true', 200),
                                                  ('false', 401)])
def test_open_or_behind_a_token(tmp_path, initialize_db, open_setting,
                                status):
    ini = initialize_db(write_ini(
        tmp_path, broker='memory',
        app=f'auth.enabled = true\nmonitoring.open = {open_setting}'))
    app = get_app(ini)
    webtest.TestApp(app).get('/health', status=status)
    app.registry['dbsession_factory'].kw['bind'].dispose()


@pytest.mark.services
@pytest.mark.parametrize('broker, backend', [('redis', 'redis'),
                                             ('rabbitmq', 'postgresql')])
def test_the_servers_of_production_answer(tmp_path, postgres_database,
                                          broker, backend):
    from .support import require
    require(broker, backend)
    ini = write_ini(tmp_path, broker=broker, backend=backend,
                    database='postgresql')
    app = get_app(ini)
    response = webtest.TestApp(app).get('/health', status=200)
    assert all(check['ok'] for check in response.json['checks'].values())
    app.registry['dbsession_factory'].kw['bind'].dispose()


@pytest.mark.services
def test_a_frozen_redis_is_503_within_the_bound(tmp_path, initialize_db,
                                                 private_redis):
    """A Redis that accepts connections and never answers (SIGSTOP)."""
    ini = initialize_db(write_ini(tmp_path, broker='memory',
                                  backend=private_redis.url(1)))
    app = get_app(ini)
    client = webtest.TestApp(app)
    client.get('/health', status=200)
    private_redis.freeze()
    try:
        started = time.monotonic()
        response = client.get('/health', status=503)
        assert time.monotonic() - started < health.CHECK_SECONDS + 2
        assert response.json['checks']['result_backend']['ok'] is False
    finally:
        private_redis.thaw()
    app.registry['dbsession_factory'].kw['bind'].dispose()
