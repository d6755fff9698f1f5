"""Every way of starting a command reads the ini the same way.

Celery's and pyramid_celery's own command forms, and Pyramid's ``pserve``
and ``pshell``, with the settings that used to do nothing or something
else than they said.
"""
import os

import pytest
from pyramid.paster import get_app

from .jobs_support import load_job, wait_until
from .support import Worker, run_command, write_ini

pytestmark = pytest.mark.worker

CELERY = ('celery', '-A', 'myapp.celery_integration')
#: For pserve, which loads the server before the app (never started here).
SERVER = '[server:main]\nuse = egg:waitress#main\nlisten = 127.0.0.1:0\n'


def schedule_files(folder):
    return [name for name in os.listdir(folder)
            if name.startswith('celerybeat-schedule')]


@pytest.mark.parametrize('argv, ready_text', [
    (('beat',), 'beat: Starting...'),
    (('worker', '-B'), 'ready.'),
])
def test_plain_celery_beat_keeps_its_schedule_beside_the_ini(
        tmp_path, initialize_db, argv, ready_text):
    """With Celery's own file-based scheduler, named in the ini (which
    myapp's database scheduler then does not replace)."""
    here, elsewhere = tmp_path / 'app', tmp_path / 'elsewhere'
    here.mkdir()
    elsewhere.mkdir()
    ini = initialize_db(write_ini(
        here, celery='beat_scheduler = celery.beat:PersistentScheduler'))
    beat = Worker(ini, command='celery', cwd=elsewhere,
                  argv=[*CELERY[1:], *argv, '--ini', ini, '-l', 'INFO'],
                  ready_text=ready_text)
    with beat:
        beat.wait_for('beat: Starting...')
    assert schedule_files(elsewhere) == []
    assert schedule_files(here / 'var') != []


@pytest.mark.parametrize('command', ['pserve', 'pshell', 'pceleryd'])
def test_use_celeryconfig_without_its_module_is_one_line(
        tmp_path, initialize_db, command):
    # pyramid_celery reads [celery] use_celeryconfig = true as "the
    # settings are in the module celeryconfig"; without it, pserve and
    # pshell printed a 22-96-line traceback.
    ini = initialize_db(write_ini(tmp_path, celery='use_celeryconfig = true',
                                  extra=SERVER))
    result = run_command(command, ini, cwd=tmp_path)
    assert result.returncode != 0
    assert 'Traceback' not in result.stderr, result.stderr
    assert [line for line in result.stderr.splitlines()
            if line.startswith('error: ')] == [
        f'error: {ini}, section [celery], key "use_celeryconfig": cannot '
        "import the module celeryconfig: No module named 'celeryconfig'; "
        'put celeryconfig.py on the Python path, or remove the key to read '
        'the settings from the ini']


def test_use_celeryconfig_reads_the_module(tmp_path, initialize_db):
    ini = initialize_db(write_ini(tmp_path, celery='USE_CELERYCONFIG = True'))
    (tmp_path / 'celeryconfig.py').write_text(
        'broker_url = "memory://"\nworker_concurrency = 5\n')
    result = run_command(
        'python', '-c', 'from pyramid.paster import get_app; '
        f'get_app({ini!r}); from myapp.celery_integration import celery_app; '
        'print(celery_app.conf.worker_concurrency)',
        cwd=tmp_path, env={**os.environ, 'PYTHONPATH': str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '5'


def test_a_job_started_by_celery_call_is_recorded(tmp_path, initialize_db):
    """``celery call`` (and Flower's send-task, which sends the same way)
    bypasses the task base: the worker records the job as it starts it."""
    ini = initialize_db(write_ini(tmp_path))
    app = get_app(ini)
    with Worker(ini):
        called = run_command(*CELERY, 'call', 'myapp.tasks.add',
                             '--args', '[2, 3]', '--ini', ini)
        assert called.returncode == 0, called.stderr
        job_id = called.stdout.strip().splitlines()[-1]
        job = wait_until(lambda: finished(app, job_id), timeout=30,
                         what=f'job {job_id} recorded and finished')
    assert (job.task_name, job.args, job.state, job.result) == \
        ('myapp.tasks.add', [2, 3], 'SUCCESS', 5)
    assert job.origin == f'worker:{job.worker}' and '@' in job.worker


def finished(app, job_id):
    job = load_job(app, job_id)
    return job if job is not None and job.state == 'SUCCESS' else None


def test_the_pshell_banner_gives_each_name_one_line(tmp_path, initialize_db):
    ini = initialize_db(write_ini(tmp_path, broker='memory'))
    result = run_command('pshell', ini)
    assert result.returncode == 0, result.stderr
    banner = result.stderr  # where the interactive console writes it
    for name in ('tm', 'dbsession', 'models', 'tasks', 'celery_app'):
        (line,) = [line for line in banner.splitlines()
                   if line.startswith(f'  {name} ')]
        assert len(line) < 120, line
    assert 'Celery application.' not in banner  # the class's docstring
