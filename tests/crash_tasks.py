"""A task for the crash test in test_jobs_faults.py, which its workers
import (``imports = tests.crash_tasks``): its first run commits its write,
then its whole worker dies at once, before the message is acknowledged."""
import os
import signal

from myapp.celery_integration import task
from myapp.models import Calculation


@task(name='tests.crash_tasks.record_then_die', acks_late=True)
def record_then_die(request, numbers, marker):
    """Store the sum; on the first run (no ``marker`` file yet), SIGKILL
    the worker and this pool process right after the commit."""
    request.dbsession.add(Calculation(operation='crash-test',
                                      operands=list(numbers),
                                      result=sum(numbers)))
    if not os.path.exists(marker):
        open(marker, 'w').close()
        request.tm.get().addAfterCommitHook(die)
    return sum(numbers)


def die(committed):
    os.kill(os.getppid(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)
