"""The journal: job rows, ``sent_at`` marks and successes written in
batches, off the sender's and the worker's paths.

A send outside a transaction (pshell, scripts, beat), the mark that the
broker took a message (after any send), and the success of a run that
wrote nothing need no transaction of their own: what they record is
already safe elsewhere.

* The job row of a send outside a transaction: if the process dies before
  the journal writes it, the worker records the job as it starts it (the
  message names task and arguments), and the journal's later write adds
  what only the sender knew (origin, options) without touching its state.
  A send that fails is different: its row is written at once, for the
  outbox to send it later.
* ``sent_at``: if it is lost, the outbox's sweeper sends the job again after
  its grace period, and the second delivery does not run (starting a job is
  a compare-and-set).
* The success of a run that wrote nothing to the database, when Celery
  keeps its result (``TaskSucceeded.result_kept``): if the process dies
  before the journal writes it, the job's lease expires, and the sweeper
  finds the success in the result backend and records it
  (:func:`.leases.recover_lost_runs`) instead of running the job again.

So a send costs what Celery's does, plus a dict in memory; a thread writes
what gathered every :data:`INTERVAL` seconds, a transaction for each kind.  The
history shows a job sent outside a transaction a few milliseconds later.
"""
import atexit
import datetime
import functools
import json
import logging
import os
import threading
import weakref

from sqlalchemy import (JSON, Text, bindparam, cast, column, func, select,
                        update)

from ..models.job import SUCCESS, Job
from . import lifecycle
from .lifecycle import DIALECT_INSERTS
from .values import jsonable

log = logging.getLogger(__name__)

#: Seconds a batch gathers before it is written.
INTERVAL = 0.05
#: The most rows or marks kept while the database is away; older ones are
#: dropped (the worker and the sweeper make up for them, as above).
MAX_PENDING = 100_000
#: What only the sender knows; kept over the worker's provisional values.
SENDER_COLUMNS = ('origin', 'parent_id', 'group_id', 'options',
                  'created_at')
JOURNAL = 'myapp.jobs.journal'


class Journal:
    """One per process (:func:`journal`); thread-safe."""

    def __init__(self, session_factory, interval=INTERVAL):
        self.session_factory = session_factory
        self.interval = interval
        self.pid = os.getpid()
        self.rows = {}   # job id: column values, to insert
        self.marks = {}  # job id: its sent_at, for rows already written
        self.successes = {}  # job id: lifecycle.success()'s parameters
        self.lock = threading.Lock()
        self.writing = threading.Lock()
        self.wakeup = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True,
                                       name='myapp-jobs-journal')
        self.thread.start()

    def record(self, values):
        """Write this job row (a dict of column values) soon."""
        with self.lock:
            self.rows[values['id']] = values
        self.wakeup.set()

    def sent(self, job_id, at):
        """Mark the job sent at ``at`` soon."""
        with self.lock:
            row = self.rows.get(job_id)
            if row is not None:
                row['sent_at'] = at
            else:
                self.marks[job_id] = {'job_id': job_id, 'at': at}
        self.wakeup.set()

    def succeeded(self, job_id, result, at):
        """Record soon that the job succeeded with ``result`` at ``at``."""
        with self.lock:
            self.successes[job_id] = {'job_id': job_id,
                                      'result': jsonable(result), 'now': at}
        self.wakeup.set()

    def run(self):
        while True:
            self.wakeup.wait()
            self.stop_gathering()
            try:
                self.flush()
            except Exception:  # the database is away: keep, retry
                log.exception('job history: %d rows, %d marks and %d '
                              'successes not written yet', len(self.rows),
                              len(self.marks), len(self.successes))
                self.wakeup.wait(1)

    def stop_gathering(self):
        threading.Event().wait(self.interval)
        self.wakeup.clear()

    def flush(self):
        """Write what gathered, now: rows, then marks, then successes, each
        in a transaction of its own that takes its rows' locks in the
        order of their ids.  Two journals (a sender's, a worker's) may
        write the same rows at once; locking in one order, they cannot
        deadlock."""
        with self.writing:
            with self.lock:
                taken = [self.rows, self.marks, self.successes]
                self.rows, self.marks, self.successes = {}, {}, {}
            for step, write in enumerate((write_rows, write_marks,
                                          write_successes)):
                if not taken[step]:
                    continue
                try:
                    with self.session_factory() as dbsession, \
                            dbsession.begin():
                        write(dbsession, [taken[step][job_id]
                                          for job_id in sorted(taken[step])])
                except Exception:
                    self.keep(*[pending if number >= step else {}
                                for number, pending in enumerate(taken)])
                    raise

    def keep(self, rows, marks, successes):
        """Put back what could not be written, under the bound."""
        with self.lock:
            self.rows = {**rows, **self.rows}
            self.marks = {**marks, **self.marks}
            self.successes = {**successes, **self.successes}
            for pending in (self.rows, self.marks, self.successes):
                for job_id in list(pending)[:len(pending) - MAX_PENDING]:
                    del pending[job_id]


def write_rows(dbsession, rows):
    """Insert the rows; a row the worker wrote first (it started the job)
    gets the sender's columns and keeps its state."""
    if not rows:
        return
    dialect = dbsession.get_bind().dialect.name
    if dialect == 'postgresql':
        dbsession.connection().execute(upsert_batch(), batch_of(rows))
        return
    if dialect not in DIALECT_INSERTS:
        for row in rows:  # another database: one at a time
            with dbsession.begin_nested():
                dbsession.merge(Job(**row))
        return
    # One statement for any number of rows (compiled once, cached), run
    # as executemany.
    dbsession.connection().execute(upsert(dialect), rows)


def write_marks(dbsession, marks):
    update_each(dbsession, marks, marks_batch, mark_sent)


def write_successes(dbsession, successes):
    update_each(dbsession, successes, successes_batch, lifecycle.success)


def update_each(dbsession, items, batch_statement, statement):
    """One UPDATE for each of ``items`` (parameter sets with ``job_id``):
    on PostgreSQL one statement for them all, after taking their rows'
    locks in id order (an ``UPDATE ... FROM`` takes them in an order of
    its own); elsewhere one statement, many parameter sets."""
    if not items:
        return
    connection = dbsession.connection()
    if connection.dialect.name == 'postgresql':
        batch = batch_of(items)
        connection.execute(lock_batch(), batch)
        connection.execute(batch_statement(), batch)
        return
    connection.execute(statement(), items)


@functools.cache
def mark_sent():
    jobs = Job.__table__
    return (update(jobs).where(jobs.c.id == bindparam('job_id'),
                               jobs.c.sent_at.is_(None))
            .values(sent_at=bindparam('at')))


@functools.cache
def upsert(dialect, source=None):
    """Insert rows (given as parameter sets, or selected by ``source``);
    on a row the worker wrote first, only the sender's columns."""
    jobs = Job.__table__
    statement = DIALECT_INSERTS[dialect](jobs)
    if source is not None:
        statement = statement.from_select(
            [column.name for column in jobs.columns], source)
    kept = {name: getattr(statement.excluded, name)
            for name in SENDER_COLUMNS}
    kept['sent_at'] = func.coalesce(jobs.c.sent_at, statement.excluded.sent_at)
    return statement.on_conflict_do_update(index_elements=[jobs.c.id],
                                           set_=kept)


# -- PostgreSQL: a batch is one JSON document ---------------------------------
#
# Each statement takes a whole batch as one parameter, a JSON array that
# the server unpacks (json_to_recordset).  As executemany, every row was a
# statement of its own, and putting a row's 27 parameters into the driver's
# format cost the process 90 us of CPU a row; as JSON, 25 us (measured on
# 300 rows).  The journal runs in the sender's and the worker's processes,
# beside the sends and the runs.

def batch_of(items):
    """``{'batch': JSON}`` of the items (dicts), NULLs left out."""
    return {'batch': json.dumps(
        [{name: value for name, value in item.items() if value is not None}
         for item in items], default=datetime_text)}


def datetime_text(value):
    if isinstance(value, datetime.datetime):
        return value.isoformat()  # the server reads the offset too
    raise TypeError(f'{type(value).__name__} is not JSON')


def recordset(**columns):
    """The batch, as a table of ``columns`` (name: type)."""
    return (func.json_to_recordset(cast(bindparam('batch', type_=Text),
                                        JSON))
            .table_valued(*[column(name, type_)
                            for name, type_ in columns.items()])
            .render_derived(name='batch', with_types=True))


@functools.cache
def upsert_batch():
    jobs = Job.__table__
    batch = recordset(**{column.name: column.type for column in jobs.columns})
    # In id order, so that two journals lock the rows they share in one
    # order (see Journal.flush).
    return upsert('postgresql', select(
        *[batch.c[column.name] for column in jobs.columns]
    ).order_by(batch.c.id))


@functools.cache
def marks_batch():
    """:func:`mark_sent`, for the batch."""
    jobs = Job.__table__
    batch = recordset(job_id=jobs.c.id.type, at=jobs.c.sent_at.type)
    return (update(jobs).where(jobs.c.id == batch.c.job_id,
                               jobs.c.sent_at.is_(None))
            .values(sent_at=batch.c['at']))


@functools.cache
def successes_batch():
    """lifecycle.succeed()'s UPDATE, for the batch."""
    jobs = Job.__table__
    batch = recordset(job_id=jobs.c.id.type, result=jobs.c.result.type,
                      now=jobs.c.finished_at.type)
    return (update(jobs).where(jobs.c.id == batch.c.job_id)
            .values(state=SUCCESS, result=batch.c.result,
                    finished_at=batch.c.now, lease_expires_at=None,
                    error_type=None, error_message=None,
                    error_traceback=None))


@functools.cache
def lock_batch():
    """Lock the batch's rows (by ``job_id``) in the order of their ids."""
    jobs = Job.__table__
    batch = recordset(job_id=jobs.c.id.type)
    return (select(jobs.c.id).where(jobs.c.id.in_(select(batch.c.job_id)))
            .order_by(jobs.c.id).with_for_update())


_journals = weakref.WeakSet()  # every Journal of this process


def journal(registry):
    """The app's :class:`Journal` in this process (a forked child makes
    its own), written out when the process exits."""
    current = registry.get(JOURNAL)
    if current is None or current.pid != os.getpid():
        current = registry[JOURNAL] = Journal(registry['dbsession_factory'])
        _journals.add(current)
        atexit.register(flush_at_exit, weakref.ref(current))
    return current


def flush_at_exit(reference):
    current = reference()
    if current is None or current.pid != os.getpid():
        return
    try:
        current.flush()
    except Exception:
        log.exception('job history: not written at exit')


def flush():
    """Write this process's journals now (the outbox needs a failed send's
    row on disk before the sender hears of the failure)."""
    for current in list(_journals):
        if current.pid == os.getpid():
            current.flush()
