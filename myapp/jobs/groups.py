"""Jobs started by other jobs, and groups seen as one unit.

Celery's canvas sends jobs on a job's behalf: the next step of a
``chain`` and a ``link`` callback are sent by the job before them (their
origin is ``task:ID``, :class:`~myapp.celery_integration.Origin`); the
members of a ``group``, and of a ``chord``'s header, carry the group's id
(``group_id``), and so does the chord's callback, which Celery sends once
the header is done.
"""
from sqlalchemy import select

from ..celery_integration import Origin
from ..models.job import FAILURE, FINISHED, PENDING, STARTED, SUCCESS, \
    WAITING, Job
from .send_options import chord_callback_id

#: The most jobs a group or a job's children are listed with.
MAX_LISTED = 1000


def children_query(job_id, limit=MAX_LISTED):
    """The jobs ``job_id`` sent while it ran, oldest first (by the index
    on origin)."""
    return (select(Job).where(Job.origin == str(Origin.task(job_id)))
            .order_by(Job.created_at, Job.id).limit(limit))


def members_query(group_id, limit=MAX_LISTED):
    """A group's jobs, oldest first (by the small index on group_id)."""
    return (select(Job).where(Job.group_id == group_id)
            .order_by(Job.created_at, Job.id).limit(limit))


def is_callback(job):
    """A chord's callback is sent with its header's group id, without a
    place in it (``group_index``)."""
    return job.group_id is not None and 'group_index' not in job.options


def group_state(states):
    """One state for the group: FAILURE if a member failed; SUCCESS once
    all succeeded; REVOKED once all finished, some revoked; PENDING while
    none has started; else STARTED."""
    states = list(states)
    if FAILURE in states:
        return FAILURE
    if all(state == SUCCESS for state in states):
        return SUCCESS
    if all(state in FINISHED for state in states):
        return 'REVOKED'
    if all(state in WAITING for state in states):
        return PENDING
    return STARTED


def group_summary(group_id, jobs):
    """The group as one unit: its members (the header, for a chord), their
    counts per state and the one state, and the chord's callback."""
    members = [job for job in jobs if not is_callback(job)]
    callback = next((job for job in jobs if is_callback(job)), None)
    # Known from the header before Celery sends it (once all have run).
    callback_id = callback.id if callback is not None else next(
        (chord_callback_id(job.options) for job in members
         if chord_callback_id(job.options)), None)
    counts = {}
    for job in members:
        counts[job.state] = counts.get(job.state, 0) + 1
    states = [job.state for job in members]
    if callback_id is not None:
        states.append(PENDING if callback is None else callback.state)
    return {
        'id': group_id,
        'kind': 'group' if callback_id is None else 'chord',
        'size': len(members),
        'counts': counts,
        'state': group_state(states) if states else PENDING,
        'finished': bool(states) and all(state in FINISHED
                                         for state in states),
        'members': members,
        'callback': callback,
        'callback_id': callback_id,
    }
