"""The sweeper: what each worker does for the jobs no run is looking after.

Every half lease, at most 10 s, from a thread in each worker's main
process (and in the ``myapp.jobs.tasks.send_unsent`` task, which beat may
run too), in one transaction:

* runs lost with their worker go back to the outbox, or fail
  (:func:`.leases.recover_lost_runs`);
* the outbox's unsent jobs are sent (:func:`.outbox.send_unsent`);
* jobs sent long ago, never started, whose queue is empty, are sent again
  (:func:`.lost_messages.recover_lost_messages`).

Several sweepers may run at once: both steps are compare-and-sets on rows
that are locked or written one sweeper at a time, so each job is handled
once.
"""
import logging
import os
import threading

from . import leases, lost_messages, outbox

log = logging.getLogger(__name__)

def sweep(dbsession, older_than_seconds=outbox.GRACE_SECONDS,
          limit=outbox.BATCH_SIZE, lost_after=lost_messages.DEFAULT):
    """Recover lost runs and messages, and send the outbox; return how
    many were sent."""
    return leases.recover_lost_runs(dbsession, limit) + \
        lost_messages.recover_lost_messages(dbsession, lost_after, limit) + \
        outbox.send_unsent(dbsession, older_than_seconds, limit)


class Sweeper:
    """Sweeps at once, then every ``interval`` seconds, from a thread."""

    def __init__(self, session_factory, interval,
                 lost_after=lost_messages.DEFAULT):
        self.session_factory = session_factory
        self.lost_after = lost_after
        self.pid = os.getpid()
        self.interval = interval
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True,
                                       name='myapp-sweeper')

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stopped.set()

    def run(self):
        while True:
            try:
                self.sweep_once()
            except Exception:  # the database or broker is away: later
                log.exception('sweep failed; next in %ss', self.interval)
            if self.stopped.wait(self.interval):
                return

    def sweep_once(self):
        with self.session_factory() as dbsession, dbsession.begin():
            return sweep(dbsession, lost_after=self.lost_after)


SWEEPER = 'myapp.jobs.sweeper'


def start_sweeper(registry):
    """Start the app's sweeper in this process, once."""
    current = registry.get(SWEEPER)
    if current is None or current.pid != os.getpid():
        # A dead run is sent again within 1.5 leases (40 s by default), and
        # a held job a good 10 s before it is due (outbox.HOLD_BEYOND).
        interval = min(leases.lease(registry).total_seconds() / 2, 10)
        current = registry[SWEEPER] = Sweeper(
            registry['dbsession_factory'], interval,
            lost_messages.resend_after(registry)).start()
    return current
