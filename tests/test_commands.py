"""The console scripts: exit codes and one-line messages.

The one test that runs ``initialize_myapp_db`` for real is here; every
other test's database is a copy of one migrated in the test process.
"""
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from pyramid.paster import get_app

from myapp.celery_integration import StartupError

from .support import Worker, run_command, write_ini


def assert_one_line_error(result, *fragments):
    assert result.returncode != 0
    assert 'Traceback' not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines()
             if line.startswith('error: ')]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.worker
@pytest.mark.parametrize('command', ['pceleryd', 'pcelerybeat'])
def test_usage_without_an_ini(command):
    result = run_command(command)
    assert result.returncode != 0
    assert f'usage: {command} INI' in result.stderr


@pytest.mark.worker
@pytest.mark.parametrize('command', ['pceleryd', 'pcelerybeat',
                                     'initialize_myapp_db'])
def test_a_missing_ini_is_one_line(command, tmp_path):
    result = run_command(command, str(tmp_path / 'missing.ini'))
    assert_one_line_error(result, 'missing.ini: no such file')


@pytest.mark.worker
def test_a_misspelt_setting_stops_the_worker_with_one_line(tmp_path,
                                                           initialize_db):
    ini = initialize_db(write_ini(tmp_path, celery='worker_concurency = 4'))
    result = run_command('pceleryd', ini)
    assert_one_line_error(result, 'section [celery]',
                          'key "worker_concurency"',
                          'did you mean "worker_concurrency"?')


@pytest.mark.worker
def test_an_app_that_fails_to_boot_stops_the_worker(tmp_path):
    # pyramid_celery issue 66: a traceback, then a worker with defaults.
    ini = write_ini(tmp_path)  # database never initialised
    for argv in (['pceleryd', ini],
                 ['celery', '-A', 'myapp.celery_integration',
                  'worker', '--ini', ini]):
        result = run_command(*argv)
        assert_one_line_error(result, 'is not initialised',
                              'run initialize_myapp_db')
        assert 'ready' not in result.stdout + result.stderr


def test_the_web_app_refuses_an_uninitialised_database(tmp_path):
    ini = write_ini(tmp_path)
    with pytest.raises(StartupError, match='is not initialised: run '
                       'initialize_myapp_db'):
        get_app(ini)


@pytest.mark.worker
def test_initialize_db_is_idempotent(tmp_path):
    ini = write_ini(tmp_path)
    for _ in range(2):
        result = run_command('initialize_myapp_db', ini)
        assert result.returncode == 0, result.stderr
    get_app(ini)  # and the app accepts the result


@pytest.mark.worker
def test_pyramid_celery_imports_on_python_3_12(tmp_path, initialize_db):
    """Python 3.12 removed configparser.SafeConfigParser (issue 105).

    On 3.12+ the interpreter is the real thing; before, the test deletes the
    alias to see the same.
    """
    if sys.version_info >= (3, 12):
        simulate = ''
    else:
        simulate = 'import configparser; del configparser.SafeConfigParser; '
    without_fix = subprocess.run(
        [sys.executable, '-c', simulate + 'import pyramid_celery'],
        capture_output=True, text=True)
    assert without_fix.returncode != 0  # the gap is real
    assert 'SafeConfigParser' in without_fix.stderr, without_fix.stderr
    ini = initialize_db(write_ini(tmp_path))
    with_fix = subprocess.run(
        [sys.executable, '-c', simulate + textwrap.dedent(f"""
            import configparser
            print(hasattr(configparser, 'SafeConfigParser'))
            from pyramid.paster import get_app
            get_app({ini!r})
            from myapp.celery_integration import celery_app
            print(celery_app.conf.worker_concurrency)
            """)], capture_output=True, text=True)
    assert with_fix.returncode == 0, with_fix.stderr
    # No alias until myapp restored it, and then the app's settings.
    assert with_fix.stdout.split() == ['False', '2'], with_fix.stdout


@pytest.fixture
def beat_ini(tmp_path, initialize_db):
    return initialize_db(write_ini(tmp_path))


def start_beat(ini):
    return Worker(ini, command='pcelerybeat',
                  ready_text='beat: Starting...').start()


@pytest.mark.worker
def test_beat_keeps_its_state_in_var_beside_the_ini(beat_ini, tmp_path):
    beat = start_beat(beat_ini)
    try:
        beat.wait_for('beat: Starting...')
        var = tmp_path / 'var'
        assert (var / 'celerybeat.pid').read_text().strip() == \
            str(beat.process.pid)
        # Its schedule is in the app database: no celerybeat-schedule
        # file, in var/ or (Celery's default) the current directory.
        beat.wait_for('beat: this process', timeout=10)
        assert not any(name.startswith('celerybeat-schedule')
                       for name in os.listdir(var))
        assert not any(name.startswith('celerybeat')
                       for name in os.listdir(os.getcwd()))
    finally:
        beat.stop()


@pytest.mark.worker
def test_a_second_beat_on_the_same_ini_is_refused(beat_ini):
    beat = start_beat(beat_ini)
    try:
        for argv in (['pcelerybeat', beat_ini],
                     ['pceleryd', beat_ini, '--beat']):
            result = run_command(*argv)
            assert_one_line_error(result, 'another beat already runs',
                                  f'pid {beat.process.pid}')
    finally:
        beat.stop()


@pytest.mark.worker
def test_beat_restarts_after_sigkill_and_ignores_a_stale_pidfile(beat_ini,
                                                                 tmp_path):
    beat = start_beat(beat_ini)
    beat.stop(signal.SIGKILL)
    pidfile = tmp_path / 'var' / 'celerybeat.pid'
    # The pid of a live process, as after a container restart (seed 001).
    pidfile.write_text(f'{os.getpid()}\n')
    again = start_beat(beat_ini)
    try:
        assert pidfile.read_text().strip() == str(again.process.pid)
    finally:
        again.stop()


def test_ini_vars_are_passed_to_the_app(tmp_path):
    from myapp.celery_integration.celery import parse_ini_vars

    assert parse_ini_vars('a=1,b=x=y') == {'a': '1', 'b': 'x=y'}
    assert parse_ini_vars(None) == {}
    with pytest.raises(StartupError, match='--ini-var "oops" is not '
                       'key=value'):
        parse_ini_vars('oops')


@pytest.mark.worker
@pytest.mark.parametrize('command', ['pcelerybeat', 'pceleryd'])
def test_a_periodic_job_for_an_unknown_task_stops_worker_and_beat(
        command, tmp_path, initialize_db):
    ini = write_ini(tmp_path, extra="""
        [celerybeat:typo]
        task = myapp.tasks.ad
        type = integer
        schedule = 5
        """)
    initialize_db(ini)
    result = run_command(command, ini)
    assert_one_line_error(result, 'section [celerybeat:typo], key "task"',
                          'no task named "myapp.tasks.ad"',
                          'did you mean "myapp.tasks.add"?')
