"""Celery beat's scheduler for the ``periodic_jobs`` table.

Celery's documented extension point (a :class:`celery.beat.Scheduler`),
named by ``beat_scheduler`` (set by :mod:`myapp.schedules` unless the ini
names another), so ``pcelerybeat INI``, ``pceleryd INI --beat`` and
``celery -A myapp.celery_integration beat --ini INI`` all use it.

Every tick (at most a second apart) it:

1. takes or extends the beat lease (:mod:`.lease`); a process that does
   not hold it sends nothing and asks again a second later;
2. reads the table, so that a change made by any process (the API, a
   page, another machine, SQL) is seen within a second, without a restart;
3. sends each due job in a transaction that also extends the lease and
   advances the job's ``last_run_at`` and ``total_runs`` only if no one
   else did (compare and set on ``total_runs``), and records the job
   (``origin`` ``beat:NAME``), whose message goes after the commit (the
   outbox sends it if this process dies in between).  So a tick is sent
   once, whichever beat sends it, and one that was missed while no beat
   held the lease is sent once when one takes over, as Celery does after
   a restart.

When it starts it synchronises the ini's ``[celerybeat:NAME]`` sections
into the table (:func:`.store.synchronise_ini`).
"""
import contextlib
import datetime
import logging

from celery.beat import ScheduleEntry, Scheduler
from celery.schedules import crontab

from ..celery_integration import Origin, PyramidTask
from ..celery_integration.scripting import request_in_transaction
from ..models.schedule import PeriodicJob
from ..models.types import UTC, utcnow
from . import store
from .lease import Lease, current_holder, lease_seconds

log = logging.getLogger(__name__)

#: A change to the table is seen within this, and a standby asks this often.
TICK_SECONDS = 1.0
#: What a clocked job that never ran counts from: long before its time.
NEVER = datetime.datetime(1970, 1, 1, tzinfo=UTC)


class DatabaseScheduler(Scheduler):
    """Beat's schedule from the ``periodic_jobs`` table; one beat of many
    sends (see module)."""

    max_interval = TICK_SECONDS
    #: Nothing to write back: each send writes its own row.
    sync_every = float('inf')

    @classmethod
    def needs_machine_lock(cls, ini_path):
        """One beat per machine on SQLite (one file, one machine: the
        lock refuses a second beat at once); on a database server the
        lease lets several run, one sending (:mod:`myapp.celery_integration.
        beatlock` asks)."""
        from pyramid.paster import get_appsettings

        from ..models import database_url
        url = database_url(get_appsettings(ini_path))
        return url.get_backend_name() == 'sqlite'

    def __init__(self, *args, **kwargs):
        self.entries = {}   # name -> ScheduleEntry, as last read
        self.celery_entries = {}  # Celery's own (celery_defaults)
        self.read_as = {}   # name -> the row's values it was built from
        self.refused = {}   # name -> the row's values beat cannot run
        self.lease = None
        self.active = None  # whether this process sends (None: not asked)
        super().__init__(*args, **kwargs)

    # -- Celery's Scheduler API ----------------------------------------

    @property
    def registry(self):
        registry = self.app.conf.get('PYRAMID_REGISTRY')
        if registry is None:
            raise RuntimeError(
                'DatabaseScheduler needs the Pyramid app: start beat with '
                'pcelerybeat INI (or celery beat --ini INI)')
        return registry

    def setup_schedule(self):
        registry = self.registry
        self.lease = Lease(lease_seconds(registry.settings))
        with self.transaction() as request:
            added, updated, removed = store.synchronise_ini(
                request.dbsession, registry.settings['celery.ini_file'])
        self.celery_entries = self.celery_defaults()
        log.info('beat: periodic jobs from the ini: %d added, %d updated, '
                 '%d removed, in %s', len(added), len(updated), len(removed),
                 self.database())

    def celery_defaults(self):
        """Celery's own periodic job, as its default scheduler adds it
        (``install_default_entries``): a result backend that does not
        expire results itself (a database) has them deleted at 04:00.
        Not in the table: it is Celery's, not the app's to change."""
        conf = self.app.conf
        if not conf.result_expires or self.app.backend.supports_autoexpire:
            return {}
        return {'celery.backend_cleanup': ScheduleEntry(
            name='celery.backend_cleanup', task='celery.backend_cleanup',
            schedule=crontab('0', '4', '*'), options={'expires': 12 * 3600},
            app=self.app)}

    def get_schedule(self):
        return self.entries

    def set_schedule(self, schedule):
        self.entries = schedule

    schedule = property(get_schedule, set_schedule)

    def tick(self, *args, **kwargs):
        """Send what is due; return how long beat may sleep.

        A database that does not answer is no reason to stop beat: it says
        so and tries again a tick later (another beat may have taken the
        lease by then).
        """
        try:
            return self.tick_once()
        except Exception as exc:
            log.warning('beat: cannot read or send the periodic jobs: '
                        '%s: %s; trying again in %ss', type(exc).__name__,
                        exc, TICK_SECONDS)
            return TICK_SECONDS

    def tick_once(self):
        with self.transaction() as request:
            dbsession = request.dbsession
            active = self.lease.hold(dbsession)
            if active:
                self.read(dbsession)
            holder = None if active else current_holder(dbsession)
        self.announce(active, holder)
        if not active:
            return TICK_SECONDS
        wait = TICK_SECONDS
        for name, entry in self.celery_entries.items():
            if self.is_due(entry)[0]:
                self.app.send_task(entry.task, entry.args, entry.kwargs,
                                   **entry.options)
                self.celery_entries[name] = next(entry)
        for entry in list(self.entries.values()):
            due, next_in = self.is_due(entry)
            if due:
                self.send(entry)
            else:
                wait = min(wait, next_in)
        return max(wait, 0.0)

    def close(self):
        if self.lease is not None and self.active:
            with contextlib.suppress(Exception), \
                    self.transaction() as request:
                self.lease.release(request.dbsession)
            self.active = None
            log.info('beat: lease released')

    @property
    def info(self):
        return f'    . database -> {self.database()} (periodic_jobs)'

    def database(self):
        """The app database's URL, its password hidden."""
        engine = self.registry['dbsession_factory'].kw['bind']
        return engine.url.render_as_string(hide_password=True)

    # -- reading the table --------------------------------------------

    def read(self, dbsession):
        """Rebuild the entries of the rows that changed since last read."""
        rows = dbsession.query(PeriodicJob).all()
        seen = set()
        for job in rows:
            seen.add(job.name)
            values = row_values(job)
            if self.read_as.get(job.name) == values:
                continue
            self.read_as[job.name] = values
            entry = self.entry_of(job)
            if entry is None:
                self.entries.pop(job.name, None)
            else:
                self.entries[job.name] = entry
        for name in set(self.read_as) - seen:
            del self.read_as[name]
            self.entries.pop(name, None)

    def entry_of(self, job):
        """The entry beat evaluates, or None (disabled, or not runnable)."""
        if not job.enabled:
            return None
        try:
            definition = store.check_definition(
                self.app, store.definition_of(job)._asdict())
        except store.InvalidSchedule as exc:
            log.error('beat: periodic job %s not scheduled: %s (change it '
                      'over the API, the page or in SQL)', job.name, exc)
            return None
        first = NEVER if job.type == 'clocked' else job.created_at
        return ScheduleEntry(
            name=job.name, task=job.task, app=self.app,
            schedule=definition.celery_schedule(self.app),
            args=job.args, kwargs=job.kwargs, options=job.options,
            last_run_at=job.last_run_at or first,
            total_run_count=job.total_runs)

    # -- sending --------------------------------------------------------

    def send(self, entry):
        """Send one tick of ``entry``, once (see module); False if another
        process did, or changed the job, or this one lost the lease."""
        now = utcnow()
        with self.transaction() as request:
            dbsession = request.dbsession
            if not self.lease.hold(dbsession, now):
                self.announce(False, current_holder(dbsession))
                return False
            advanced = dbsession.query(PeriodicJob).filter(
                PeriodicJob.name == entry.name,
                PeriodicJob.enabled.is_(True),
                PeriodicJob.total_runs == entry.total_run_count,
            ).update({
                PeriodicJob.last_run_at: now,
                PeriodicJob.total_runs: PeriodicJob.total_runs + 1,
                # A clocked job runs once, then stays disabled.
                PeriodicJob.enabled: PeriodicJob.type != 'clocked',
            }, synchronize_session=False)
            if not advanced:
                log.info('beat: %s changed meanwhile; read again',
                         entry.name)
                self.read_as.pop(entry.name, None)
                return False
            self.queue(request, entry)
        log.info('Scheduler: Sending due task %s (%s)', entry.name,
                 entry.task)
        entry.last_run_at, entry.total_run_count = now, \
            entry.total_run_count + 1
        self.read_as.pop(entry.name, None)  # read its row again
        return True

    def queue(self, request, entry):
        """Hand the run to the transaction: recorded now, sent at commit."""
        task = self.app.tasks.get(entry.task)
        options = dict(entry.options)
        if isinstance(task, PyramidTask):
            task.apply_async(entry.args, entry.kwargs,
                             origin=Origin.beat(entry.name), **options)
            return
        request.tm.get().addAfterCommitHook(
            self.send_plain, args=(entry.task, entry.args, entry.kwargs),
            kws=options)

    def send_plain(self, committed, name, args, kwargs, **options):
        """A task that is not a PyramidTask: no job row; sent at commit."""
        if committed:
            self.app.send_task(name, args, kwargs, **options)

    # -- helpers ----------------------------------------------------------

    def transaction(self):
        """A request of the app with a transaction of its own: a
        PyramidTask sent inside it is recorded in it and sent when it
        commits."""
        return request_in_transaction(self.registry)

    def announce(self, active, holder):
        """Log when this process starts or stops sending."""
        if active == self.active:
            return
        self.active = active
        if active:
            log.info('beat: this process (%s) sends the periodic jobs',
                     self.lease.holder)
        else:
            log.info('beat: standby: the periodic jobs are sent by %s',
                     holder or 'another process')


def row_values(job):
    """What an entry is built from: a change to any of it rebuilds it."""
    return (job.task, repr(job.args), repr(job.kwargs), repr(job.options),
            job.type, repr(job.schedule), job.timezone, job.enabled,
            job.last_run_at, job.total_runs, job.created_at)
