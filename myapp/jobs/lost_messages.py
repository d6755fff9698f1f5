"""Lost messages: a job the broker accepted, then lost before any run.

A lease (:mod:`.leases`) covers a job from the moment a run claims it.
Before that, the job is only a message, and a broker can lose one:

* kombu's Redis transport takes a message off the queue (``BRPOP``) before
  it writes it among the unacknowledged ones; a worker killed in between
  loses it (about one SIGKILL in 40 under load, ``benchmarks/
  sigkill_drill.py``);
* a Redis without persistence, or a RabbitMQ queue that is not durable,
  loses every message when the server restarts.

Such a job stays ``PENDING`` with ``sent_at`` set, forever.  So the
sweeper looks for jobs sent more than ``jobs.resend_unstarted_after``
seconds ago (``[app:main]``, default 300) that never started, and asks
the broker how many messages their queue holds.  When it holds none, their
message is not waiting anywhere a worker will read it: the job goes back to
the outbox (``lost_runs`` counts it, as a lost run) and is sent again.

A job whose message sits in a worker's prefetch behind a long task looks
the same, and is sent a second time; that copy does not run (starting a
job is a compare-and-set, :func:`.lifecycle.start`).  Only an empty queue
is trusted: a job waiting in a backlog is never sent twice.
"""
import datetime
import logging

from billiard.exceptions import WorkerLostError
from kombu.exceptions import ChannelError

from ..celery_integration import celery_app
from . import leases, lifecycle, outbox
from .durations import configure_seconds

log = logging.getLogger(__name__)

SETTING = 'jobs.resend_unstarted_after'
DEFAULT = datetime.timedelta(seconds=300)
#: Below this, a message on its way to an idle worker could look lost.
MIN_SECONDS = 5


def configure(config):
    """Read ``jobs.resend_unstarted_after`` into the registry."""
    configure_seconds(config, SETTING, DEFAULT, MIN_SECONDS)


def resend_after(registry):
    """How long a sent job may wait for its first run before its queue is
    looked at."""
    return registry.get(SETTING, DEFAULT)


def recover_lost_messages(dbsession, after=DEFAULT,
                          limit=outbox.BATCH_SIZE):
    """Send again the jobs sent more than ``after`` ago, never started,
    whose queue is empty; return how many were sent."""
    unstarted = lifecycle.sent_but_not_started(dbsession, after, limit)
    if not unstarted:
        return 0
    lost = []
    empty = {}
    for job_id, task_name, options in unstarted:
        queue = queue_name(task_name, options)
        if queue not in empty:
            try:
                empty[queue] = queue_is_empty(queue)
            except Exception as exc:  # the broker is away: next sweep
                log.warning('could not count the messages of queue %s: '
                            '%s: %s', queue, type(exc).__name__, exc)
                empty[queue] = False
        reason = WorkerLostError(
            f'its message was lost before any run (sent over '
            f'{after.total_seconds():g} s ago, never started, queue {queue} '
            'empty)')
        if empty[queue] and lifecycle.message_lost(dbsession, job_id, after,
                                                   reason):
            log.warning('job %s (%s): %s: sending it again', job_id,
                        task_name, reason)
            lost.append(job_id)
    return leases.send_again(dbsession, lost)


def queue_name(task_name, options):
    """The queue a job's message went to (its options, then the routes)."""
    route = celery_app.amqp.router.route(dict(options or {}), task_name)
    queue = route.get('queue')
    return getattr(queue, 'name', queue) or celery_app.conf.task_default_queue


def queue_is_empty(name):
    """Does the broker hold no message in queue ``name``?  One that does
    not exist (a broker restarted without it) holds none."""
    with celery_app.connection_for_write() as connection:
        channel = connection.channel()
        try:
            _, count, _ = channel.queue_declare(queue=name, passive=True)
        except (ChannelError, *connection.channel_errors):
            return True
        finally:
            try:
                channel.close()
            except Exception:  # closed by the broker's 404 already
                pass
    return count == 0
