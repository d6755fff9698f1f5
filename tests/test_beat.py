"""Periodic jobs run by real beat processes, counted in the app's database.

The job writes a row per run (``myapp.tasks.record_sum``), so a row is a run
that succeeded and committed.  (Refusing a second beat and ignoring a stale
pidfile are tested in test_commands.py.)
"""
import datetime
import signal
import time

import pytest
from pyramid.paster import get_app
from sqlalchemy import func, select

from myapp.models import Calculation, Job

from .support import Worker, write_ini

pytestmark = pytest.mark.worker

EVERY_SECOND = """
    [celerybeat:tick]
    task = myapp.tasks.record_sum
    type = integer
    schedule = 1
    args = [[1]]
    """
#: Only bounds a wait that should end much sooner; not a timing assertion.
PATIENCE = 30


def run_counter(ini):
    """Counts the rows the job wrote, through the app's own engine."""
    engine = get_app(ini).registry['dbsession_factory'].kw['bind']

    def count():
        with engine.connect() as connection:
            return connection.scalar(select(func.count(Calculation.id)))

    return count


@pytest.fixture(scope='module')
def worker_only(tmp_path_factory, initialize_db):
    """A worker without beat, shared: each test starts its own beat.

    Shared because a worker's warm shutdown takes seconds.
    """
    ini = initialize_db(write_ini(tmp_path_factory.mktemp('beat'),
                                  extra=EVERY_SECOND))
    with Worker(ini) as worker:
        yield ini, worker, run_counter(ini)


def wait_for_runs(runs, expected, timeout, *processes):
    deadline = time.monotonic() + timeout
    while runs() < expected:
        if time.monotonic() > deadline:
            logs = '\n'.join(process.output() for process in processes)
            raise AssertionError(f'{runs()} runs after {timeout}s, expected '
                                 f'{expected}:\n{logs}')
        time.sleep(0.2)


def beat(ini):
    """A ``pcelerybeat`` process, not started yet."""
    return Worker(ini, command='pcelerybeat', ready_text='beat: Starting...')


def sent_by(process):
    return process.output().count('Sending due task tick')


def test_a_worker_with_beat_runs_a_one_second_job_five_times(
        tmp_path, initialize_db):
    ini = initialize_db(write_ini(tmp_path, extra=EVERY_SECOND))
    runs = run_counter(ini)
    with Worker(ini, '--beat') as worker:
        # The issue's own figure: five runs within about 12 seconds.
        wait_for_runs(runs, 5, 12, worker)


def test_standalone_beat_sends_to_a_separate_worker(worker_only):
    ini, worker, runs = worker_only
    before = runs()
    with beat(ini) as scheduler:
        wait_for_runs(runs, before + 3, PATIENCE, worker, scheduler)
        assert sent_by(scheduler) >= 3


def test_beat_killed_and_restarted_keeps_firing(worker_only):
    ini, worker, runs = worker_only
    killed = beat(ini).start()
    try:
        wait_for_runs(runs, runs() + 2, PATIENCE, worker, killed)
    finally:
        killed.stop(signal.SIGKILL)
    # Runs the killed beat sent may still land; only the new beat's sends
    # can take the count three past this.
    before = runs()
    with beat(ini) as restarted:
        wait_for_runs(runs, before + 3, PATIENCE, worker, restarted)
        assert sent_by(restarted) >= 3


# -- schedules changed while beat runs ----------------------------------------

def beat_runs(app, name):
    """When beat sent each run of ``name`` (the jobs' creation times)."""
    engine = app.registry['dbsession_factory'].kw['bind']
    with engine.connect() as connection:
        return connection.scalars(
            select(Job.created_at).where(Job.origin == f'beat:{name}')
            .order_by(Job.created_at)).all()


def test_a_schedule_made_over_http_runs_and_stops_without_a_restart(
        tmp_path, initialize_db):
    """The issue's promise: within 2 seconds of its first tick, and
    disabled, no run 2 seconds after."""
    import webtest

    ini = initialize_db(write_ini(tmp_path))
    app = get_app(ini)
    api = webtest.TestApp(app)
    with Worker(ini, '--beat') as worker:
        worker.wait_for('beat: this process', timeout=PATIENCE)
        made = api.post_json('/api/schedules', {
            'name': 'every2', 'task': 'myapp.tasks.record_sum',
            'type': 'integer', 'schedule': 2, 'args': [[1]]}, status=201)
        first_tick = datetime.datetime.fromisoformat(
            made.json['created_at']) + datetime.timedelta(seconds=2)
        deadline = time.monotonic() + PATIENCE
        while len(beat_runs(app, 'every2')) < 2:
            assert time.monotonic() < deadline, worker.output()
            time.sleep(0.2)
        sent = beat_runs(app, 'every2')
        assert (sent[0] - first_tick).total_seconds() < 2, \
            (first_tick, sent, worker.output())

        api.patch_json('/api/schedules/every2', {'enabled': False},
                       status=200)
        disabled_at = datetime.datetime.now(datetime.timezone.utc)
        time.sleep(4)
        late = [at for at in beat_runs(app, 'every2')
                if (at - disabled_at).total_seconds() > 2]
        assert late == [], worker.output()
    app.registry['dbsession_factory'].kw['bind'].dispose()
