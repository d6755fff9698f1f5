"""The database scheduler, in this process: what it reads, when it sends,
and that one tick is sent once however many beats run.

Beats here are :class:`DatabaseScheduler` objects on one SQLite database
with an in-memory broker (sends are real, nothing consumes them); the
beats as processes, on SQLite and PostgreSQL, are in test_beat_ha.py.
"""
import datetime
import logging

import pytest
from sqlalchemy import select, update

from myapp.celery_integration import celery_app
from myapp.celery_integration.beatlock import needs_machine_lock
from myapp.models import BeatLease, Job, PeriodicJob
from myapp.models.types import utcnow
from myapp.schedules import store
from myapp.schedules.scheduler import DatabaseScheduler

from .jobs_support import transaction_of

SECTIONS = """
    [celerybeat:tick]
    task = myapp.tasks.add
    type = integer
    schedule = 5
    args = [1, 2]

    [celerybeat:paused]
    task = myapp.tasks.add
    type = integer
    schedule = 5
    args = [3, 4]
    enabled = false
    """


@pytest.fixture
def beat_app(tmp_path, initialize_db):
    from pyramid.paster import get_app

    from .support import write_ini
    ini = initialize_db(write_ini(tmp_path, broker='memory', extra=SECTIONS))
    app = get_app(ini)
    yield app
    app.registry['dbsession_factory'].kw['bind'].dispose()


def beat():
    return DatabaseScheduler(app=celery_app)


def add_periodic_job(app, name, age_seconds=60, **values):
    values = {'task': 'myapp.tasks.add', 'type': 'integer', 'schedule': 5,
              'args': [1, 1], **values}
    with transaction_of(app) as request:
        job = store.create(request.dbsession, celery_app, name, values)
        job.created_at = utcnow() - datetime.timedelta(seconds=age_seconds)


def periodic_job(app, name):
    with transaction_of(app) as request:
        job = request.dbsession.get(PeriodicJob, name)
        request.dbsession.expunge_all()
        return job


def run_jobs(app, name):
    """The jobs beat sent for ``name``, loaded (usable after the
    transaction)."""
    with transaction_of(app) as request:
        jobs = request.dbsession.scalars(
            select(Job).where(Job.origin == f'beat:{name}')).all()
        request.dbsession.expunge_all()
        return jobs


def sql(app, statement):
    with transaction_of(app) as request:
        request.dbsession.execute(statement)


def test_the_ini_sections_are_copied_into_the_table(beat_app):
    beat()
    tick, paused = periodic_job(beat_app, 'tick'), \
        periodic_job(beat_app, 'paused')
    assert (tick.source, tick.type, tick.schedule, tick.args,
            tick.enabled) == ('ini', 'integer', 5, [1, 2], True)
    assert (paused.source, paused.enabled) == ('ini', False)


def test_a_restart_keeps_what_was_switched_at_run_time(beat_app):
    beat()
    sql(beat_app, update(PeriodicJob).where(PeriodicJob.name == 'tick')
        .values(enabled=False, total_runs=7))
    beat()
    tick = periodic_job(beat_app, 'tick')
    assert (tick.enabled, tick.total_runs) == (False, 7)


def test_a_section_changed_or_removed_changes_the_table(beat_app, tmp_path):
    beat()
    ini = beat_app.registry.settings['celery.ini_file']
    text = open(ini).read().replace('args = [1, 2]', 'args = [2, 2]')
    text = text.replace('[celerybeat:paused]', '[not_a_job]')
    with open(ini, 'w') as handle:
        handle.write(text)
    with transaction_of(beat_app) as request:
        added, updated, removed = store.synchronise_ini(request.dbsession,
                                                        ini)
    assert (added, updated, removed) == ([], ['tick'], ['paused'])
    assert periodic_job(beat_app, 'tick').args == [2, 2]
    assert periodic_job(beat_app, 'paused') is None


def test_a_due_job_is_sent_recorded_and_counted(beat_app, published):
    scheduler = beat()
    add_periodic_job(beat_app, 'every5', args=[20, 22])
    scheduler.tick()
    job = periodic_job(beat_app, 'every5')
    assert job.total_runs == 1 and job.last_run_at is not None
    runs = run_jobs(beat_app, 'every5')
    assert [(run.task_name, run.args) for run in runs] == \
        [('myapp.tasks.add', [20, 22])]
    assert runs[0].id in published
    # Not due again for 5 seconds.
    scheduler.tick()
    assert len(run_jobs(beat_app, 'every5')) == 1


def test_a_new_job_waits_one_interval_from_its_creation(beat_app,
                                                        published):
    scheduler = beat()
    add_periodic_job(beat_app, 'fresh', age_seconds=0)
    assert scheduler.tick() <= 1.0
    assert run_jobs(beat_app, 'fresh') == []


def test_a_change_in_sql_is_read_on_the_next_tick(beat_app, published):
    scheduler = beat()
    add_periodic_job(beat_app, 'every5')
    sql(beat_app, update(PeriodicJob).where(PeriodicJob.name == 'every5')
        .values(enabled=False))
    scheduler.tick()
    assert run_jobs(beat_app, 'every5') == []
    sql(beat_app, update(PeriodicJob).where(PeriodicJob.name == 'every5')
        .values(enabled=True, args=[5, 5]))
    scheduler.tick()
    assert [run.args for run in run_jobs(beat_app, 'every5')] == [[5, 5]]


def test_only_the_lease_holder_sends(beat_app, published):
    first, second = beat(), beat()
    add_periodic_job(beat_app, 'every5')
    first.tick()
    second.tick()
    assert (first.active, second.active) == (True, False)
    assert len(run_jobs(beat_app, 'every5')) == 1


def test_a_standby_takes_over_an_expired_lease_and_sends_once(
        beat_app, published, caplog):
    first, second = beat(), beat()
    first.tick()
    add_periodic_job(beat_app, 'every5')
    with caplog.at_level(logging.INFO, 'myapp.schedules'):
        second.tick()
    assert f'sent by {first.lease.holder}' in caplog.text
    # The first beat died: its lease runs out.
    sql(beat_app, update(BeatLease).values(
        expires_at=utcnow() - datetime.timedelta(seconds=1)))
    second.tick()
    assert second.active
    assert len(run_jobs(beat_app, 'every5')) == 1
    # Back from a pause, the first beat sends nothing: not its lease.
    first.tick()
    assert first.active is False
    assert len(run_jobs(beat_app, 'every5')) == 1


def test_a_tick_another_beat_sent_is_not_sent_again(beat_app, published):
    """The compare-and-set: a beat whose view of the job is stale (another
    sent the tick since it read the row) sends nothing."""
    scheduler = beat()
    add_periodic_job(beat_app, 'every5')
    scheduler.tick()
    entry = scheduler.entries['every5']
    entry.total_run_count -= 1  # as read before the other beat's send
    assert scheduler.send(entry) is False
    assert len(run_jobs(beat_app, 'every5')) == 1


def test_a_clocked_job_runs_once_then_is_disabled(beat_app, published):
    scheduler = beat()
    at = (utcnow() - datetime.timedelta(seconds=1)).isoformat()
    add_periodic_job(beat_app, 'once', type='clocked', schedule={'at': at})
    scheduler.tick()
    scheduler.tick()
    assert len(run_jobs(beat_app, 'once')) == 1
    job = periodic_job(beat_app, 'once')
    assert (job.enabled, job.total_runs) == (False, 1)


def test_a_row_beat_cannot_run_is_logged_and_skipped(beat_app, published,
                                                     caplog):
    scheduler = beat()
    add_periodic_job(beat_app, 'every5')
    add_periodic_job(beat_app, 'broken')
    sql(beat_app, update(PeriodicJob).where(PeriodicJob.name == 'broken')
        .values(task='myapp.tasks.nope'))
    with caplog.at_level(logging.ERROR, 'myapp.schedules'):
        scheduler.tick()
    assert 'periodic job broken not scheduled' in caplog.text
    assert 'no task named "myapp.tasks.nope"' in caplog.text
    assert len(run_jobs(beat_app, 'every5')) == 1


def test_a_clean_stop_releases_the_lease(beat_app):
    first, second = beat(), beat()
    first.tick()
    second.tick()
    first.close()
    second.tick()
    assert second.active


def test_one_beat_per_machine_on_sqlite_only(beat_app, tmp_path):
    from .support import write_ini
    scheduler = 'myapp.schedules.scheduler:DatabaseScheduler'
    sqlite_ini = beat_app.registry.settings['celery.ini_file']
    assert needs_machine_lock(scheduler, sqlite_ini)
    (tmp_path / 'pg').mkdir()
    server_ini = write_ini(tmp_path / 'pg', database='postgresql')
    assert not needs_machine_lock(scheduler, server_ini)
    # Celery's own scheduler knows nothing of other beats.
    assert needs_machine_lock('celery.beat:PersistentScheduler', server_ini)


def test_a_database_error_is_logged_and_beat_goes_on(beat_app, published,
                                                     caplog, monkeypatch):
    import sqlalchemy.exc
    scheduler = beat()
    add_periodic_job(beat_app, 'every5')

    def unreachable(dbsession, now=None):
        raise sqlalchemy.exc.OperationalError('SELECT', {}, 'server closed '
                                              'the connection')

    monkeypatch.setattr(scheduler.lease, 'hold', unreachable)
    with caplog.at_level(logging.WARNING, 'myapp.schedules'):
        assert scheduler.tick() == 1.0
    assert 'cannot read or send the periodic jobs' in caplog.text
    monkeypatch.undo()
    scheduler.tick()
    assert len(run_jobs(beat_app, 'every5')) == 1
