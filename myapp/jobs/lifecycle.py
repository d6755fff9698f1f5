"""A job's state transitions, each one statement on its row.

Workers, the web app and the sweeper change the same rows at once, so every
transition that could race is a compare-and-set: an ``UPDATE ... WHERE``
that names the states it may leave, and whose row count says whether it
happened.  A job that is not recorded (``Task.apply()`` in tests, a message
sent before the jobs table existed) is left alone: every function tolerates
an unknown id, and only :func:`start` records a job that a worker runs.
"""
import datetime
import functools

import sqlalchemy.exc
from sqlalchemy import (bindparam, func, literal, literal_column, select,
                        update)
from sqlalchemy.dialects import postgresql, sqlite
from zope.sqlalchemy import mark_changed

from ..celery_integration import Origin

from ..models.job import (FAILURE, FINISHED, PENDING, PROGRESS, RETRY,
                          REVOKED, RUNNING, STARTED, SUCCESS, WAITING, Job)
from ..models.types import UTCDateTime, utcnow
from .precompiled import execute, precompiled
from .send_options import options_to_store
from .values import error_type, head, jsonable, tail

#: A run holds its job for this long (``jobs.lease_seconds``), and its
#: worker extends the lease three times as often (:mod:`.leases`): a run
#: whose lease has expired is lost (its process or machine died) and the
#: job may run again.
LEASE = datetime.timedelta(seconds=30)
#: A job whose runs are lost this many times fails: it is what kills its
#: worker (out of memory, a crash in C code), not bad luck.
MAX_LOST_RUNS = 3

def enqueue(dbsession, txn, values):
    """Insert the row of a job about to be sent (:func:`enqueued`'s
    values) when ``txn``, the sender's transaction, commits; ``sent_at``
    stays NULL until it is sent.

    The rows a transaction sends are inserted together, by one Core
    statement, just before it commits: the ORM's unit of work around each
    new object took longer than the INSERT (0.4-0.6 ms a send), and on
    SQLite the database is locked for writers from the first write to the
    commit, so no earlier.  :func:`enqueued_job` shows one to a caller,
    with its changes.
    """
    try:
        unwritten = txn.data(UNWRITTEN)
    except KeyError:
        unwritten = {}
        txn.set_data(UNWRITTEN, unwritten)
        txn.addBeforeCommitHook(insert_rows, args=(dbsession, unwritten))
    unwritten[values['id']] = values


#: The key of a transaction's unwritten rows (``Transaction.data``).
UNWRITTEN = object()


def insert_rows(dbsession, unwritten):
    """Insert the rows not written yet, and forget them."""
    if unwritten:
        rows = list(unwritten.values())
        unwritten.clear()
        connection = dbsession.connection()
        if len(rows) == 1:  # the usual send: on the driver's cursor
            execute(connection, insert_row(), rows[0])
        else:
            connection.execute(insert_row(), rows)
        mark_changed(dbsession)  # a Core write: tell the transaction manager


@functools.cache
def insert_row():
    """An ``INSERT`` of every column (:func:`enqueued`'s values), each a
    named parameter, so that one row runs on the driver's cursor
    (:mod:`.precompiled`): SQLAlchemy's work around it cost a tenth of a
    send inside a transaction."""
    return precompiled(Job.__table__.insert().values(
        parameters(*column_names())))


def enqueued_job(dbsession, txn, job_id, insert_now=False, **columns):
    """The row of a job that ``txn`` sends, with ``columns`` changed
    (``retry_of``...), as a :class:`Job` to show: not an object of the
    session, the row is inserted with the others at the commit.  With
    ``insert_now``, now, and so are the others (a unique column is checked
    at once: ``IntegrityError``).  A job sent otherwise is loaded and
    changed."""
    try:
        unwritten = txn.data(UNWRITTEN)
        values = unwritten[job_id]
    except KeyError:
        job = dbsession.get(Job, job_id)
        for name, value in columns.items():
            setattr(job, name, value)
        if insert_now:
            dbsession.flush()
        return job
    values.update(columns)
    if insert_now:
        insert_rows(dbsession, unwritten)
    return Job(**values)


def enqueued(job_id, task_name, args, kwargs, options, origin):
    """The row of a job about to be sent, as column values (every column,
    so that the journal writes rows in batches, :mod:`.journal`)."""
    now = utcnow()
    parent_id = origin.parent_id
    values = dict.fromkeys(column_names())
    values.update(
        id=job_id, task_name=task_name, args=jsonable(list(args)),
        kwargs=jsonable(dict(kwargs)),
        options=options_to_store(options, now), state=PENDING,
        origin=head(str(origin), 255),
        parent_id=parent_id[:36] if parent_id else None,
        group_id=group_of(options), retries=0, lost_runs=0, created_at=now)
    return values


@functools.cache
def column_names():
    return tuple(Job.__table__.columns.keys())


def group_of(options):
    """The group (or chord) Celery sends the job in: its ``group_id``."""
    group_id = options.get('group_id')
    return group_id[:36] if isinstance(group_id, str) and group_id else None


def start(dbsession, job_id, worker, retries, unrecorded=None, lease=LEASE,
          row_appeared=False):
    """Claim the run for this delivery; return why not, or None to run.

    Only a job that is waiting may start, so a duplicate message runs
    nothing and a job revoked while queued never runs, on any broker.  A
    job held by a run whose lease expired (the worker died; a redelivered
    message, on Redis after the visibility timeout, or the sweeper's
    :func:`lose`) may start again; one whose run is alive may not, however
    its message came back.

    A job that no sender recorded (``celery call``, Flower's send-task, a
    client without this app) is recorded now, from ``unrecorded`` (its
    ``task_name``, ``args``, ``kwargs`` and ``origin``), so that every job
    a worker runs is in the history.
    """
    now = utcnow()
    params = {'job_id': job_id, 'worker': worker, 'retries': retries,
              'now': now, 'lease_expires_at': now + lease}
    dialect = dialect_of(dbsession)
    if unrecorded is not None and dialect in DIALECT_INSERTS:
        # One statement whether or not the sender's row is there yet (a
        # job sent outside a transaction is written by its journal a few
        # milliseconds later): claim it, or record it started.
        claimed = execute(dbsession, claim_or_record(dialect), {
            **params, **started_values(worker, **unrecorded)}
        ).first() is not None
    else:
        claimed = execute(dbsession, claim(), params).rowcount > 0
    if claimed:
        return None
    state = state_of(dbsession, job_id)
    if state in WAITING and not row_appeared:
        # Written between the UPDATE and this SELECT (the sender's
        # journal): claim it now that it is there.
        return start(dbsession, job_id, worker, retries, unrecorded, lease,
                     row_appeared=True)
    if state is not None:
        return f'the job is {state}'
    if unrecorded is not None and \
            not record_started(dbsession, job_id, worker, retries, lease,
                               **unrecorded):
        # Another delivery of it recorded it first: claim it as usual.
        return start(dbsession, job_id, worker, retries, lease=lease)
    return None


def startable(retries, now):
    """The jobs that a run, attempt ``retries``, may claim at ``now``."""
    # Waiting, and not a stale copy of an attempt that already failed.
    waiting = state_in(WAITING) & (Job.retries <= retries)
    # A task's own self.retry() sends the retry before TaskRetrying is
    # recorded; a later attempt is not a duplicate.
    retried = state_in(RUNNING) & (Job.retries < retries)
    # The run that held it is dead.
    orphaned = state_in(RUNNING) & (Job.lease_expires_at < now)
    return waiting | retried | orphaned


def state_in(states):
    """``jobs.state IN (...)`` with the states (constants of
    :mod:`myapp.models.job`) written into the SQL: a list of values would
    be bound parameters that SQLAlchemy expands on every execution of a
    statement otherwise built once."""
    return Job.state.in_([literal_column(f"'{state}'") for state in states])


#: What a claim sets, as bound parameters' names.
CLAIMED = ('worker', 'retries', 'lease_expires_at')


def parameters(*names):
    return {name: bindparam(name, type_=Job.__table__.c[name].type)
            for name in names}


# The statements of start(), built once: on a run's hot path, building
# one costs more than running it.  On the mapped class, not the table, so
# that a session in a transaction manager knows it wrote (zope.sqlalchemy);
# precompiled, so that on an autocommit connection they run on the
# driver's cursor (:mod:`.precompiled`).

@functools.cache
def claim():
    """The compare-and-set of :func:`start`."""
    now = bindparam('now', type_=UTCDateTime)
    return precompiled(
        update(Job)
        .where(Job.id == bindparam('job_id'),
               startable(bindparam('retries'), now))
        .values(state=STARTED, started_at=now, **parameters(*CLAIMED))
        .execution_options(synchronize_session=False))


@functools.cache
def claim_or_record(dialect):
    """:func:`claim`, or the job recorded as started when it has no row
    (:func:`started_values`): one ``INSERT ... ON CONFLICT DO UPDATE``
    that returns the id when the run may go ahead."""
    now = bindparam('now', type_=UTCDateTime)
    statement = DIALECT_INSERTS[dialect](Job).values(
        id=bindparam('job_id'), state=STARTED, created_at=now, sent_at=now,
        started_at=now, **parameters(
            'task_name', 'args', 'kwargs', 'options', 'origin', 'parent_id',
            'lost_runs', *CLAIMED))
    return precompiled(statement.on_conflict_do_update(
        index_elements=[Job.id],
        set_={'state': STARTED, 'started_at': statement.excluded.started_at,
              **{name: statement.excluded[name] for name in CLAIMED}},
        where=startable(bindparam('retries'), now),
    ).returning(Job.id))


def started_values(worker, task_name, args, kwargs, origin=None):
    """The columns of a job that a worker starts and no sender recorded
    (its ``origin`` is the sender's when its message says, else the
    worker's), but for the claim's own."""
    origin = origin or Origin.worker(worker)
    parent_id = origin.parent_id
    return {'task_name': task_name, 'args': jsonable(list(args)),
            'kwargs': jsonable(dict(kwargs)), 'options': {},
            'origin': head(str(origin), 255),
            'parent_id': parent_id[:36] if parent_id else None,
            'lost_runs': 0}


def record_started(dbsession, job_id, worker, retries, lease, task_name,
                   args, kwargs, origin=None):
    """Record a job that a worker starts and no sender recorded; False if
    it is recorded already (where :func:`claim_or_record` cannot)."""
    now = utcnow()
    return insert_new(dbsession, dict(
        id=job_id, state=STARTED, retries=retries, created_at=now,
        sent_at=now, started_at=now, worker=worker,
        lease_expires_at=now + lease,
        **started_values(worker, task_name, args, kwargs, origin)))


#: ``INSERT`` with ``ON CONFLICT``, on the databases that have it.
DIALECT_INSERTS = {'postgresql': postgresql.insert, 'sqlite': sqlite.insert}


def insert_new(dbsession, values):
    """Insert a job row unless its id is taken; True if it was inserted.
    One statement where the database has ``ON CONFLICT``."""
    insert = DIALECT_INSERTS.get(dialect_of(dbsession))
    if insert is None:
        try:
            with dbsession.begin_nested():
                dbsession.add(Job(**values))
        except sqlalchemy.exc.IntegrityError:
            return False
        return True
    # RETURNING, not the row count, which an ORM session does not report
    # for every database and driver.
    jobs = Job.__table__
    return dbsession.execute(
        insert(jobs).values(values)
        .on_conflict_do_nothing(index_elements=[jobs.c.id])
        .returning(jobs.c.id)).first() is not None


def record_progress(dbsession, job_id, current, total, message):
    """Record progress; return True when the job was revoked (stop it)."""
    recorded = changed(dbsession, update(Job)
                       .where(Job.id == job_id, Job.state.in_(RUNNING))
                       .values(state=PROGRESS,
                               progress_current=number(current),
                               progress_total=number(total),
                               progress_message=head(message or '')))
    return not recorded and state_of(dbsession, job_id) == REVOKED


def retrying(dbsession, job_id, exc, retries):
    """It failed and will run again; keeps REVOKED (the retry is vetoed).

    ``exc`` is None when the task called ``self.retry()`` without one.
    """
    error = error_values(exc) if exc is not None else {}
    changed(dbsession, update(Job)
            .where(Job.id == job_id, Job.state.not_in(FINISHED),
                   Job.retries < retries)
            .values(state=RETRY, retries=retries, **error))


def succeed(dbsession, job_id, result):
    """It returned ``result``.

    Also over REVOKED: a job that finished before it noticed its revocation
    did its work, and says so.
    """
    execute(dbsession, success(), {'job_id': job_id,
                                   'result': jsonable(result),
                                   'now': utcnow()})


@functools.cache
def success():
    """The statement of :func:`succeed`, built once (as :func:`claim`)."""
    return precompiled(
        update(Job).where(Job.id == bindparam('job_id'))
        .values(state=SUCCESS,
                result=bindparam('result', type_=Job.result.type),
                finished_at=bindparam('now', type_=UTCDateTime),
                lease_expires_at=None, error_type=None,
                error_message=None, error_traceback=None)
        .execution_options(synchronize_session=False))


def fail(dbsession, job_id, exc, traceback=None, unrecorded=None):
    """It failed with ``exc``, unless it had ended already (a refused
    duplicate of a job that succeeded stays SUCCESS).

    A job no sender recorded is recorded, failed, from ``unrecorded``
    (``task_name``, ``origin``), as :func:`start` does.
    """
    now = utcnow()
    if changed(dbsession, update(Job)
               .where(Job.id == job_id, Job.state.not_in((SUCCESS, FAILURE)))
               .values(state=FAILURE, finished_at=now,
                       lease_expires_at=None,
                       **error_values(exc, traceback))):
        return
    if unrecorded is None or state_of(dbsession, job_id) is not None:
        return
    insert_new(dbsession, dict(
        id=job_id, task_name=unrecorded['task_name'], args=[], kwargs={},
        options={}, state=FAILURE, origin=head(str(unrecorded['origin']), 255),
        retries=0, lost_runs=0, created_at=now, finished_at=now,
        **error_values(exc, traceback)))


def revoke(dbsession, job_id):
    """Revoke a job unless it has finished; return True if it is revoked."""
    changed(dbsession, update(Job)
            .where(Job.id == job_id, Job.state.not_in(FINISHED))
            .values(state=REVOKED, finished_at=utcnow(),
                    lease_expires_at=None))
    return state_of(dbsession, job_id) == REVOKED


def revoked(dbsession, job_id):
    """A worker discarded or stopped it (the revocation took effect)."""
    changed(dbsession, update(Job)
            .where(Job.id == job_id, Job.state.not_in((SUCCESS, FAILURE)))
            .values(state=REVOKED, lease_expires_at=None,
                    finished_at=func.coalesce(
                        Job.finished_at, literal(utcnow(), UTCDateTime))))


def extend_leases(dbsession, job_ids, worker, lease=LEASE):
    """Extend the leases of the runs of ``job_ids`` that ``worker`` still
    holds; return the ids it still holds."""
    now = utcnow()
    held = (Job.id.in_(job_ids), Job.state.in_(RUNNING),
            Job.worker == worker)
    changed(dbsession, update(Job).where(*held)
            .values(lease_expires_at=now + lease))
    return set(dbsession.scalars(select(Job.id).where(*held)))


def expired_leases(dbsession, limit):
    """``(id, task_name, worker)`` of the running jobs whose run is lost
    (its lease expired)."""
    return dbsession.execute(
        select(Job.id, Job.task_name, Job.worker)
        .where(Job.lease_expires_at < utcnow(), Job.state.in_(RUNNING))
        .order_by(Job.lease_expires_at).limit(limit)).all()


def lose(dbsession, job_id, reason, rerun=True, lease_expired=True):
    """The run of a running job is lost (``reason``, an exception).

    The job goes back to the outbox to be sent again (``sent_at`` NULL),
    or fails when it must not run again (``rerun`` false: its task said so)
    or has lost :data:`MAX_LOST_RUNS` runs.  With ``lease_expired``, only a
    run whose lease has expired is lost (the sweeper's view); without, the
    caller knows its process died (the worker that ran it).  Returns True
    if the job was sent back to the outbox.
    """
    running = [Job.id == job_id, Job.state.in_(RUNNING)]
    if lease_expired:
        running.append(Job.lease_expires_at < utcnow())
    if rerun:
        if changed(dbsession, update(Job)
                   .where(*running, Job.lost_runs + 1 < MAX_LOST_RUNS)
                   .values(state=PENDING, sent_at=None, worker=None,
                           lease_expires_at=None, due_at=None,
                           lost_runs=Job.lost_runs + 1)):
            return True
        reason = type(reason)(f'{reason}; it was lost {MAX_LOST_RUNS} '
                              'times, so it is not sent again')
    changed(dbsession, update(Job).where(*running)
            .values(state=FAILURE, finished_at=utcnow(),
                    lease_expires_at=None, lost_runs=Job.lost_runs + 1,
                    **error_values(reason)))
    return False


def sent_but_not_started(dbsession, after, limit):
    """``(id, task_name, options)`` of the jobs sent more than ``after``
    ago that no run has claimed (:mod:`.lost_messages`)."""
    cutoff = utcnow() - after
    return dbsession.execute(
        # created_at <= sent_at: the condition on it lets the state index
        # find the candidates among the few PENDING rows.
        select(Job.id, Job.task_name, Job.options)
        .where(Job.state == PENDING, Job.created_at < cutoff,
               Job.sent_at < cutoff)
        .order_by(Job.created_at).limit(limit)).all()


def message_lost(dbsession, job_id, after, reason):
    """The message of a job sent more than ``after`` ago, never started,
    is lost (``reason``, an exception): back to the outbox (``lost_runs``
    + 1), or FAILURE once lost :data:`MAX_LOST_RUNS` times.  True if it is
    to be sent again."""
    unstarted = [Job.id == job_id, Job.state == PENDING,
                 Job.sent_at < utcnow() - after]
    if changed(dbsession, update(Job)
               .where(*unstarted, Job.lost_runs + 1 < MAX_LOST_RUNS)
               .values(sent_at=None, lost_runs=Job.lost_runs + 1)):
        return True
    reason = type(reason)(f'{reason}; it was lost {MAX_LOST_RUNS} times, '
                          'so it is not sent again')
    changed(dbsession, update(Job).where(*unstarted)
            .values(state=FAILURE, finished_at=utcnow(),
                    lost_runs=Job.lost_runs + 1, **error_values(reason)))
    return False


# -- helpers -----------------------------------------------------------

def changed(dbsession, statement):
    """Run an UPDATE; True if it changed a row.

    Loaded Job objects are not synchronised (that would need RETURNING,
    after which SQLite reports no row count): refresh them if needed.
    """
    return dbsession.execute(
        statement.execution_options(synchronize_session=False)
    ).rowcount > 0


def succeeded_with(dbsession, job_id):
    """``(result,)`` if the job succeeded, else None."""
    row = dbsession.execute(select(Job.result).where(
        Job.id == job_id, Job.state == SUCCESS)).first()
    return None if row is None else (row[0],)


def dialect_of(dbsession):
    """The database's dialect name, of a session or a connection."""
    bind = dbsession if hasattr(dbsession, 'dialect') \
        else dbsession.get_bind()
    return bind.dialect.name


def state_of(dbsession, job_id):
    return dbsession.scalar(select(Job.state).where(Job.id == job_id))


def error_values(exc, traceback=None):
    return {'error_type': error_type(exc), 'error_message': head(exc),
            'error_traceback': tail(traceback)}


def number(value):
    return None if value is None else float(value)
