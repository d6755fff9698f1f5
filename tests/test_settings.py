"""Reading Celery's settings from the ini: each pyramid_celery 4.0 gap."""
import os
import textwrap

import pytest

from myapp.celery_integration.settings import ConfigError, load_celery_settings


def settings_from(tmp_path, text, app_settings=None, environ=None):
    path = tmp_path / 'app.ini'
    path.write_text(textwrap.dedent(text))
    return load_celery_settings(str(path), app_settings, environ or {})


def error_from(tmp_path, text, **kwargs):
    with pytest.raises(ConfigError) as info:
        settings_from(tmp_path, text, **kwargs)
    return str(info.value)


def test_here_is_expanded_in_celery_sections(tmp_path):
    # pyramid_celery parses without PasteDeploy's defaults: %(here)s fails.
    settings = settings_from(tmp_path, """
        [celery]
        result_backend = db+sqlite:///%(here)s/var/results.sqlite
        [celery:broker_transport_options]
        data_folder_in = %(here)s/var/in
        """)
    assert settings['result_backend'] == \
        f'db+sqlite:///{tmp_path}/var/results.sqlite'
    assert settings['broker_transport_options']['data_folder_in'] == \
        f'{tmp_path}/var/in'


@pytest.mark.parametrize('text, expected', [
    ('task_acks_late = false', ('task_acks_late', False)),
    ('task_acks_late = True', ('task_acks_late', True)),
    ('worker_concurrency = 3', ('worker_concurrency', 3)),
    ('worker_prefetch_multiplier = 4', ('worker_prefetch_multiplier', 4)),
    ('result_expires = 3600.5', ('result_expires', 3600.5)),
    ('imports = json, os.path', ('imports', ('json', 'os.path'))),
    ('accept_content = json', ('accept_content', ['json'])),
    ('task_annotations = {"*": {"max_retries": 5}}',
     ('task_annotations', {'*': {'max_retries': 5}})),
    ('task_publish_retry_policy = {"max_retries": 2}',
     ('task_publish_retry_policy', {'max_retries': 2})),
    ('broker_url = redis://localhost:6379/0',
     ('broker_url', 'redis://localhost:6379/0')),
])
def test_values_take_the_type_celery_declares(tmp_path, text, expected):
    # pyramid_celery hands Celery strings: "false" is truthy and
    # worker_concurrency = 3 is not honoured (its issue 95).
    settings = settings_from(tmp_path, f'[celery]\n{text}\n')
    name, value = expected
    assert settings[name] == value
    assert type(settings[name]) is type(value)


@pytest.mark.parametrize('text, message', [
    ('task_acks_late = maybe',
     'key "task_acks_late": "maybe" is not a boolean; write true or false'),
    ('worker_prefetch_multiplier = many',
     'key "worker_prefetch_multiplier": "many" is not an integer'),
    ('result_expires = soon', 'key "result_expires": "soon" is not a number'),
    ('imports = [1', 'key "imports": "[1" is not a list'),
])
def test_values_of_the_wrong_type_are_refused(tmp_path, text, message):
    error = error_from(tmp_path, f'[celery]\n{text}\n')
    assert f'{tmp_path}/app.ini, section [celery], {message}' in error


def test_a_misspelt_key_stops_with_file_section_key_and_suggestion(tmp_path):
    error = error_from(tmp_path, '[celery]\nworker_concurency = 2\n')
    assert error == (f'{tmp_path}/app.ini, section [celery], key '
                     '"worker_concurency": not a Celery setting; '
                     'did you mean "worker_concurrency"?')


def test_a_misspelt_legacy_key_suggests_the_new_name(tmp_path):
    error = error_from(tmp_path, '[celery]\nCELERY_RESULT_BACKEN = x\n')
    assert 'did you mean "result_backend" (formerly CELERY_RESULT_BACKEND)?' \
        in error


@pytest.mark.parametrize('legacy, name, raw, value', [
    ('BROKER_URL', 'broker_url', 'amqp://h//', 'amqp://h//'),
    ('CELERY_RESULT_BACKEND', 'result_backend', 'rpc://', 'rpc://'),
    ('CELERY_TIMEZONE', 'timezone', 'Asia/Tokyo', 'Asia/Tokyo'),
    ('CELERY_ENABLE_UTC', 'enable_utc', 'False', False),
    ('CELERY_ACCEPT_CONTENT', 'accept_content', 'json', ['json']),
    ('CELERYD_CONCURRENCY', 'worker_concurrency', '4', 4),
    ('celery_timezone', 'timezone', 'Asia/Seoul', 'Asia/Seoul'),
])
def test_legacy_names_map_to_celery_5_names(tmp_path, legacy, name, raw,
                                             value):
    settings = settings_from(tmp_path, f'[celery]\n{legacy} = {raw}\n')
    assert settings[name] == value
    assert legacy not in settings


def test_seed_002_settings_in_the_app_section_are_honoured(tmp_path):
    app_settings = {'BROKER_URL': 'amqp://guest:guest@localhost//',
                    'CELERY_RESULT_BACKEND': 'rpc://',
                    'sqlalchemy.url': 'sqlite://'}
    settings = settings_from(tmp_path, """
        [app:main]
        BROKER_URL = amqp://guest:guest@localhost//
        CELERY_RESULT_BACKEND = rpc://
        [celery]
        CELERY_TIMEZONE = Asia/Tokyo
        """, app_settings=app_settings)
    assert settings['broker_url'] == 'amqp://guest:guest@localhost//'
    assert settings['result_backend'] == 'rpc://'
    assert settings['timezone'] == 'Asia/Tokyo'


def test_a_misspelt_seed_name_in_the_app_section_is_refused(tmp_path):
    error = error_from(tmp_path, """
        [app:main]
        CELERY_RESULT_BACKNED = rpc://
        """, app_settings={'CELERY_RESULT_BACKNED': 'rpc://'})
    assert 'section [app:main], key "CELERY_RESULT_BACKNED"' in error
    assert 'did you mean "result_backend"' in error


def test_the_same_setting_twice_in_one_section_is_refused(tmp_path):
    error = error_from(tmp_path, """
        [celery]
        BROKER_URL = amqp://a//
        broker_url = amqp://b//
        """)
    assert 'sets broker_url a second time (also as "BROKER_URL")' in error


def test_app_section_and_celery_section_that_disagree_are_refused(tmp_path):
    # Seed 002 writes BROKER_URL in [app:main]; [celery] used to win
    # silently when both gave a value.
    error = error_from(tmp_path, """
        [app:main]
        BROKER_URL = amqp://guest:guest@rabbit//
        [celery]
        broker_url = redis://localhost:6379/0
        """, app_settings={'BROKER_URL': 'amqp://guest:guest@rabbit//'})
    assert 'section [celery], key "broker_url"' in error
    assert 'sets broker_url to another value than [app:main] ' \
        '"BROKER_URL" does' in error


def test_app_section_and_celery_section_may_agree(tmp_path):
    settings = settings_from(tmp_path, """
        [app:main]
        CELERY_RESULT_BACKEND = rpc://
        [celery]
        result_backend = rpc://
        """, app_settings={'CELERY_RESULT_BACKEND': 'rpc://'})
    assert settings['result_backend'] == 'rpc://'


@pytest.mark.parametrize('spelling', ['use_celeryconfig', 'USE_CELERYCONFIG'])
def test_use_celeryconfig_in_either_case(tmp_path, spelling):
    # pyramid_celery's own tests spell it USE_CELERYCONFIG = True.
    settings = settings_from(tmp_path, f'[celery]\n{spelling} = True\n')
    assert settings['use_celeryconfig'] is True


def test_every_broker_transport_option_passes_typed(tmp_path):
    # pyramid_celery keeps only visibility_timeout and max_retries.
    settings = settings_from(tmp_path, """
        [celery:broker_transport_options]
        visibility_timeout = 3600
        polling_interval = 0.05
        store_processed = false
        data_folder_out = %(here)s/out
        queue_order_strategy = priority
        sep = :
        """)
    assert settings['broker_transport_options'] == {
        'visibility_timeout': 3600, 'polling_interval': 0.05,
        'store_processed': False, 'data_folder_out': f'{tmp_path}/out',
        'queue_order_strategy': 'priority', 'sep': ':'}


def test_an_unknown_dict_section_is_refused(tmp_path):
    error = error_from(tmp_path, """
        [celery:broker_transport_option]
        polling_interval = 1
        """)
    assert 'section [celery:broker_transport_option]' in error
    assert 'did you mean "broker_transport_options"?' in error


def test_routes_sections(tmp_path):
    settings = settings_from(tmp_path, """
        [celeryroute:myapp.tasks.add]
        queue = slow
        routing_key = slow.add
        """)
    assert settings['task_routes'] == {
        'myapp.tasks.add': {'queue': 'slow', 'routing_key': 'slow.add'}}


def test_json_only_by_default_and_pickle_refused(tmp_path):
    settings = settings_from(tmp_path, '[celery]\n')
    assert settings['accept_content'] == ['json']
    assert settings['task_serializer'] == 'json'
    assert settings['result_serializer'] == 'json'
    error = error_from(tmp_path, '[celery]\naccept_content = json pickle\n')
    assert 'key "accept_content": pickle is not accepted' in error
    error = error_from(tmp_path, '[celery]\nCELERY_TASK_SERIALIZER = pickle\n')
    assert 'key "CELERY_TASK_SERIALIZER"' in error


def test_beat_state_defaults_to_var_beside_the_ini(tmp_path):
    settings = settings_from(tmp_path, '[celery]\n')
    assert settings['beat_schedule_filename'] == \
        os.path.join(str(tmp_path), 'var', 'celerybeat-schedule')


def test_environment_overrides_broker_and_backend(tmp_path):
    settings = settings_from(tmp_path, """
        [celery]
        broker_url = amqp://localhost//
        result_backend = rpc://
        """, environ={'CELERY_BROKER_URL': 'redis://secret@localhost/1',
                      'CELERY_RESULT_BACKEND': 'redis://secret@localhost/2'})
    assert settings['broker_url'] == 'redis://secret@localhost/1'
    assert settings['result_backend'] == 'redis://secret@localhost/2'


def test_unknown_timezone_suggests_close_names(tmp_path):
    error = error_from(tmp_path, '[celery]\ntimezone = Asia/Tokio\n')
    assert 'unknown time zone "Asia/Tokio"' in error
    assert '"Asia/Tokyo"' in error


def test_missing_file_and_broken_file(tmp_path):
    with pytest.raises(ConfigError, match='cannot read it'):
        load_celery_settings(str(tmp_path / 'nope.ini'))
    error = error_from(tmp_path, 'no section header\n')
    assert 'line 1 comes before any [section]' in error


def test_undefined_interpolation_names_the_key(tmp_path):
    error = error_from(tmp_path, '[celery]\nbroker_url = %(nowhere)s\n')
    assert 'section [celery], key "broker_url": cannot expand the value' \
        in error


def test_use_celeryconfig_is_read_as_a_boolean(tmp_path):
    settings = settings_from(tmp_path, '[celery]\nuse_celeryconfig = false\n')
    assert settings['use_celeryconfig'] is False


@pytest.mark.parametrize('name', ['development.ini', 'production.ini'])
def test_the_shipped_ini_files_load(name):
    project = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    settings = load_celery_settings(os.path.join(project, name), environ={})
    assert settings['accept_content'] == ['json']
    if name == 'production.ini':
        assert settings['broker_url'].startswith('amqp://')
        assert settings['task_acks_late'] is True
        assert settings['worker_prefetch_multiplier'] == 1
    else:
        assert settings['broker_url'] == 'filesystem://localhost//'
        assert settings['broker_transport_options']['polling_interval'] == 0.05


def test_a_route_needs_a_queue_and_nothing_else(tmp_path):
    error = error_from(tmp_path, '[celeryroute:myapp.tasks.add]\nroute = x\n')
    assert 'section [celeryroute:myapp.tasks.add], key "queue": missing' \
        in error
    error = error_from(tmp_path, '[celeryroute:a]\nqueue = q\nrouting = x\n')
    assert 'key "routing": unknown key' in error


def test_a_misspelt_celery_section_prefix_is_refused(tmp_path):
    error = error_from(tmp_path, '[celerybaet:tick]\ntask = x\n')
    assert 'section [celerybaet:tick]: unknown section' in error
    assert 'did you mean "celerybeat"?' in error
