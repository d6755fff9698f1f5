"""A job: one Celery task run, from the moment it is asked for.

The row is written in the sender's transaction (``myapp.jobs`` subscribes
to the task lifecycle events), so it is also the outbox: ``sent_at`` stays
NULL until the broker has accepted the message.
"""
from sqlalchemy import JSON, Column, Float, Index, Integer, String, Text

from .meta import Base
from .types import UTCDateTime, utcnow

# Celery's state names (celery.states), plus the PROGRESS that
# ``request.report_progress`` sets.
PENDING = 'PENDING'
STARTED = 'STARTED'
PROGRESS = 'PROGRESS'
RETRY = 'RETRY'
SUCCESS = 'SUCCESS'
FAILURE = 'FAILURE'
REVOKED = 'REVOKED'

#: Waiting for a worker: a run may start.
WAITING = (PENDING, RETRY)
#: A worker is running it.
RUNNING = (STARTED, PROGRESS)
#: Nothing more will happen to it.
FINISHED = (SUCCESS, FAILURE, REVOKED)
#: May be started again (a retry: a new job).
RETRYABLE = (FAILURE, REVOKED)
STATES = WAITING + RUNNING + FINISHED


class Job(Base):
    __tablename__ = 'jobs'

    id = Column(String(36), primary_key=True)  # the Celery task id
    task_name = Column(String(255), nullable=False)
    args = Column(JSON, nullable=False, default=list)
    kwargs = Column(JSON, nullable=False, default=dict)
    #: What the sweeper needs to send it again (eta, queue...), as JSON.
    options = Column(JSON, nullable=False, default=dict)
    state = Column(String(16), nullable=False, default=PENDING)

    progress_current = Column(Float)
    progress_total = Column(Float)
    progress_message = Column(Text)

    result = Column(JSON)
    error_type = Column(String(255))
    error_message = Column(Text)
    error_traceback = Column(Text)

    #: Who asked: ``http``, ``shell``, ``beat:NAME``, ``task:ID``... (the
    #: text of a ``myapp.celery_integration.Origin``, which reads it).
    origin = Column(String(255), nullable=False)
    parent_id = Column(String(36))
    worker = Column(String(255))
    retries = Column(Integer, nullable=False, default=0)
    #: A digest of the client's Idempotency-Key and of who sent it
    #: (``myapp.jobs.actions.stored_idempotency_key``), not the key.
    idempotency_key = Column(String(255), unique=True)
    #: The failed or revoked job this one started again (a retry from the
    #: API or the pages, :func:`myapp.jobs.actions.retry_job`).
    retry_of = Column(String(36))
    #: The group (or chord) it belongs to, as Celery's ``group_id``: the
    #: members of a group, and a chord's header and its callback.
    group_id = Column(String(36))
    #: Runs lost with their worker (process killed, machine gone) and sent
    #: again (:mod:`myapp.jobs.leases`).
    lost_runs = Column(Integer, nullable=False, default=0,
                       server_default='0')

    #: NULL until the broker accepted the message (the outbox).
    sent_at = Column(UTCDateTime)
    created_at = Column(UTCDateTime, nullable=False, default=utcnow)
    started_at = Column(UTCDateTime)
    finished_at = Column(UTCDateTime)
    #: While it runs: the run is known alive until then.  Its worker
    #: extends it; past it, the run is lost and the job is sent again.
    lease_expires_at = Column(UTCDateTime)
    #: Held in the outbox until then (an ETA further off than a broker
    #: holds a message safely).
    due_at = Column(UTCDateTime)

    __table_args__ = (
        # Newest first, with keyset pagination on (created_at, id): all of
        # the jobs, or those of one task, or in one state.
        Index('ix_jobs_created_at_id', 'created_at', 'id'),
        Index('ix_jobs_task_name_created_at_id', 'task_name', 'created_at',
              'id'),
        Index('ix_jobs_state_created_at_id', 'state', 'created_at', 'id'),
        Index('ix_jobs_worker_created_at_id', 'worker', 'created_at', 'id'),
        # The last run of each periodic job (origin 'beat:NAME').
        Index('ix_jobs_origin_created_at', 'origin', 'created_at'),
        # purge_history: finished jobs by age.
        Index('ix_jobs_finished_at', 'finished_at'),
        # The sweeper's outbox: only the few unsent rows are indexed.
        # Lost runs: only the running jobs hold a lease.
        Index('ix_jobs_lease_expires_at', 'lease_expires_at',
              postgresql_where=lease_expires_at.isnot(None),
              sqlite_where=lease_expires_at.isnot(None)),
        Index('ix_jobs_unsent', 'created_at',
              postgresql_where=sent_at.is_(None),
              sqlite_where=sent_at.is_(None)),
        # The retries of a job: only retries have retry_of.
        Index('ix_jobs_retry_of', 'retry_of',
              postgresql_where=retry_of.isnot(None),
              sqlite_where=retry_of.isnot(None)),
        # The members of a group: only they have group_id.
        Index('ix_jobs_group_id', 'group_id', 'created_at',
              postgresql_where=group_id.isnot(None),
              sqlite_where=group_id.isnot(None)),
    )

    def __repr__(self):
        return f'<Job {self.id} {self.task_name} {self.state}>'
