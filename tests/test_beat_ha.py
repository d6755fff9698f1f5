"""Several beats, one sends: real ``pcelerybeat`` processes on one app
database, the active one killed (SIGKILL), each tick counted.

Beat records every run it sends in the jobs table (origin ``beat:NAME``)
in the transaction that advances the schedule, so the rows are the ticks
sent: no worker is needed to count them.
"""
import datetime
import re
import time
import uuid

import pytest
from sqlalchemy import create_engine, delete, select

from myapp.models import BeatLease, Job, PeriodicJob

from .support import DATABASES, Worker, require, write_ini

pytestmark = pytest.mark.worker

SCHEDULER = 'beat_scheduler = myapp.schedules.scheduler:DatabaseScheduler'
LEASE_SECONDS = 3
#: The issue's bound: a standby sends within this of the active one's
#: death.  Not a timing assertion on speed: a correctness bound.
TAKEOVER_BOUND = 10
PATIENCE = 30
ACTIVE = re.compile(r'beat: this process \((\d+)@')


def ha_ini(directory, database, name):
    directory.mkdir()
    return write_ini(directory, database=database, celery=SCHEDULER,
                     app=f'schedules.lease_seconds = {LEASE_SECONDS}',
                     extra=f"""
                         [celerybeat:{name}]
                         task = myapp.tasks.add
                         type = integer
                         schedule = 1
                         args = [1, 1]
                         """)


@pytest.fixture(params=['sqlite', 'postgresql'])
def two_inis(request, tmp_path, initialize_db):
    """Two inis on one app database, each in a folder of its own (so
    SQLite's one-beat-per-folder lock does not refuse the second)."""
    name = f'tick_{uuid.uuid4().hex[:6]}'
    if request.param == 'postgresql':
        request.getfixturevalue('postgres_database')
        require('postgresql')
        url = DATABASES['postgresql']
        first = ha_ini(tmp_path / 'a', 'postgresql', name)
    else:
        first = initialize_db(ha_ini(tmp_path / 'a', 'sqlite', name))
        url = f'sqlite:///{tmp_path / "a" / "var" / "myapp.sqlite"}'
    second = ha_ini(tmp_path / 'b', url, name)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(delete(BeatLease))
        connection.execute(delete(PeriodicJob))
    yield first, second, name, engine
    engine.dispose()


def runs(engine, name):
    with engine.connect() as connection:
        return connection.scalars(
            select(Job.created_at).where(Job.origin == f'beat:{name}')
            .order_by(Job.created_at)).all()


def total_runs(engine, name):
    with engine.connect() as connection:
        return connection.scalar(select(PeriodicJob.total_runs)
                                 .where(PeriodicJob.name == name))


def wait_for_runs(engine, name, count, *beats):
    deadline = time.monotonic() + PATIENCE
    while len(runs(engine, name)) < count:
        if time.monotonic() > deadline:
            logs = '\n'.join(beat.output() for beat in beats)
            raise AssertionError(f'{len(runs(engine, name))} runs, expected '
                                 f'{count}:\n{logs}')
        time.sleep(0.2)


def start_beat(ini):
    return Worker(ini, command='pcelerybeat',
                  ready_text='beat: Starting...').start()


def active_pid(beat):
    found = ACTIVE.search(beat.output())
    return int(found.group(1)) if found else None


def test_two_beats_send_each_tick_once_across_a_sigkill(two_inis):
    first_ini, second_ini, name, engine = two_inis
    first = start_beat(first_ini)
    try:
        first.wait_for('beat: this process', timeout=PATIENCE)
        second = start_beat(second_ini)
    except BaseException:
        first.stop()
        raise
    try:
        second.wait_for('beat: standby: the periodic jobs are sent by '
                        f'{first.process.pid}@', timeout=PATIENCE)
        wait_for_runs(engine, name, 3, first, second)

        first.kill_outright()
        killed_at = datetime.datetime.now(datetime.timezone.utc)
        before = len(runs(engine, name))
        second.wait_for('beat: this process', timeout=TAKEOVER_BOUND + 5)
        assert active_pid(second) == second.process.pid
        wait_for_runs(engine, name, before + 3, second)
    finally:
        second.stop()
        first.stop()

    sent = runs(engine, name)
    logs = first.output() + second.output()
    gaps = [(later - earlier).total_seconds()
            for earlier, later in zip(sent, sent[1:])]
    # No tick twice: sends of a 1-second schedule are a second apart.
    assert min(gaps) > 0.5, (gaps, logs)
    # None lost beyond the takeover: the standby sent within the bound of
    # the death, the missed ticks once, then every second again.
    after_kill = [at for at in sent if at > killed_at]
    assert (after_kill[0] - killed_at).total_seconds() < TAKEOVER_BOUND, \
        (gaps, logs)
    assert max(gaps) < TAKEOVER_BOUND, (gaps, logs)
    # Each send advanced the schedule once: the table counts them all.
    assert total_runs(engine, name) == len(sent)


def test_a_second_beat_on_the_same_sqlite_ini_is_still_refused(
        tmp_path, initialize_db):
    """On one machine, the embedded default: the flock refuses at once."""
    from .support import run_command
    from .test_commands import assert_one_line_error
    ini = initialize_db(ha_ini(tmp_path / 'a', 'sqlite', 'tick'))
    with Worker(ini, command='pcelerybeat',
                ready_text='beat: Starting...') as beat:
        result = run_command('pcelerybeat', ini)
        assert_one_line_error(result, 'another beat already runs',
                              f'pid {beat.process.pid}')
