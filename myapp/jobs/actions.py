"""What can be done to jobs: start one, retry one, revoke one; retry or
revoke many.

The one place for it: the JSON API (:mod:`.api`) and the pages
(:mod:`.pages`) both call these functions, so a job started or revoked
from a page is checked, recorded and sent exactly as over the API.  A
refusal is an :class:`~.errors.ApiError`, which the API answers as JSON and
the pages show on the page.
"""
import hashlib
import json
import logging
import typing

import pyramid_retry
import sqlalchemy.exc
from sqlalchemy import select

from ..celery_integration import Origin, celery_app
from ..models.job import RETRYABLE, Job
from . import lifecycle
from .errors import ApiError
from .exposure import InvalidArguments, exposed_task, exposed_tasks
from .recording import recorded_job
from .send_options import GROUP_OPTIONS, TIME_OPTIONS, options_to_send

log = logging.getLogger(__name__)


class IdempotencyKeyRace(pyramid_retry.RetryableException):
    """Another request with the same key committed first: try again, and
    find its job."""


def start_job(request, asked, idempotency_key=None):
    """Record the job and queue its message (sent when the request
    commits); return its :class:`~myapp.models.Job`.

    With an ``idempotency_key``, a request made again (a client retrying
    after a lost answer) gets the first request's job instead of a second.
    Keys are the client's own (:func:`stored_idempotency_key`).
    """
    if idempotency_key is not None:
        idempotency_key = stored_idempotency_key(
            idempotency_key, request.authenticated_userid)
        earlier = request.dbsession.scalar(
            select(Job).where(Job.idempotency_key == idempotency_key))
        if earlier is not None:
            return same_request(earlier, asked)
    task = startable_task(request.registry, asked)
    sent = task.apply_async(asked.args, asked.kwargs, origin=Origin.http(),
                            **asked.options)
    if idempotency_key is None:
        return recorded_job(request, sent.id)
    try:
        return recorded_job(request, sent.id, insert_now=True,
                            idempotency_key=idempotency_key)
    except sqlalchemy.exc.IntegrityError:
        # The unique key: a concurrent request took it between our look-up
        # and now.  This transaction (and its send) is abandoned; the retry
        # finds the other request's job.
        raise IdempotencyKeyRace(idempotency_key) from None


def retry_job(request, job):
    """Start a failed or revoked job again, as a new job (its ``retry_of``
    names ``job``): the same task, arguments and options, but for times
    (``eta``, ``expires``), which were the first job's: a retry runs now;
    and outside the first job's group: a chord counts its members' results
    once, and has counted (or given up on) the first job's.

    Checked as a start over HTTP is (the task exposed, the arguments
    fitting it today); 409 for a job that is not failed or revoked.
    """
    if job.state not in RETRYABLE:
        raise ApiError(409, 'only a failed or revoked job can be retried',
                       {'state': job.state})
    asked = RetryRequest(job.task_name, job.args, job.kwargs)
    task = startable_task(request.registry, asked)
    options = {name: value for name, value in job.options.items()
               if name not in TIME_OPTIONS + GROUP_OPTIONS}
    sent = task.apply_async(job.args, job.kwargs, origin=Origin.http(),
                            **options_to_send(options))
    return recorded_job(request, sent.id, retry_of=job.id)


class RetryRequest(typing.NamedTuple):
    """What :func:`startable_task` checks of a job to start again."""
    task: str
    args: list
    kwargs: dict


def retry_jobs(request, jobs):
    """Retry each of ``jobs`` that can be: ``(retries, skipped)``, the new
    jobs as ``(job, retry)`` and the others as ``(job, why)``."""
    retries, skipped = [], []
    for job in jobs:
        try:
            retries.append((job, retry_job(request, job)))
        except ApiError as exc:
            skipped.append((job, exc.error))
    return retries, skipped


def revoke_jobs(request, jobs, terminate=False):
    """Revoke each of ``jobs`` that has not finished: ``(revoked,
    skipped)``."""
    revoked, skipped = [], []
    for job in jobs:
        if revoke_job(request, job, terminate):
            revoked.append(job)
        else:
            skipped.append((job, 'the job has already finished'))
    return revoked, skipped


def startable_task(registry, asked):
    """The exposed task ``asked`` names, its arguments checked."""
    exposed = exposed_task(registry, asked.task)
    if exposed is None:
        raise ApiError(400, f'task "{asked.task}" cannot be started over '
                       'HTTP', {'available': sorted(exposed_tasks(registry))})
    try:
        exposed.check_arguments(asked.args, asked.kwargs)
    except InvalidArguments as exc:
        raise ApiError(400, str(exc), exc.detail) from None
    return exposed.task


def stored_idempotency_key(key, userid=None):
    """What the table keeps for a client's ``Idempotency-Key``: a digest
    of the key and of who sent it, the authenticated user
    (``request.authenticated_userid``) or, without one, the one scope of
    anonymous clients.  A client's key never finds another user's job;
    and the digest is 64 characters, whatever the key (255 at most).
    """
    scope = ['anonymous'] if userid is None else ['user', str(userid)]
    return hashlib.sha256(json.dumps(scope + [key]).encode()).hexdigest()


def same_request(job, asked):
    """The job a key names, provided the key is used for the same call.

    Else a 422 that does not say which job the key names: in the shared
    anonymous scope it may be another client's.
    """
    if (job.task_name, job.args, job.kwargs) != \
            (asked.task, asked.args, asked.kwargs):
        raise ApiError(422, 'this Idempotency-Key was used for another '
                       'request', 'send another key for another request')
    return job


def revoke_job(request, job, terminate=False):
    """Revoke it: a queued job never runs, a running one stops.  False if
    it has already finished (nothing changes then).

    The row says REVOKED at once, and every run checks the row as it
    starts and at each progress report; the broadcast to the workers
    (after commit) stops it sooner, or at once with ``terminate``.
    """
    if not lifecycle.revoke(request.dbsession, job.id):
        request.dbsession.refresh(job)
        return False
    request.dbsession.refresh(job)
    request.tm.get().addAfterCommitHook(broadcast_revoke,
                                        args=(job.id, terminate))
    return True


def broadcast_revoke(committed, job_id, terminate):
    if not committed:
        return
    try:
        celery_app.control.revoke(job_id, terminate=terminate)
    except Exception as exc:
        # The row is REVOKED: the job stops at its next check anyway.
        log.warning('revoke of job %s not broadcast: %s: %s', job_id,
                    type(exc).__name__, exc)
