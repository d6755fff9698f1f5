"""myapp's tasks.

Each receives the Pyramid request first (``request.dbsession``,
``request.registry``...) and runs in its own transaction: see
:mod:`myapp.celery_integration.pyramid_task`.  Callers pass only the other
arguments: ``add.delay(5, 10)``.
"""
import time

from sqlalchemy import func, select

from .celery_integration import task
from .models import Calculation

#: slow_add may be started over HTTP: bound how long it holds a worker.
MAX_SLOW_ADD_SECONDS = 3600


@task
def add(request, x, y):
    return x + y


@task
def mul(request, x, y):
    return x * y


@task
def xsum(request, numbers):
    return sum(numbers)


@task
def record_sum(request, numbers):
    """Store a sum in the ``calculations`` table; return it with the count.

    Sent from a view, it starts only after the view's transaction commits,
    so rows the view wrote are there to read.
    """
    calculation = Calculation(operation='sum', operands=list(numbers),
                              result=sum(numbers))
    request.dbsession.add(calculation)
    request.dbsession.flush()
    count = request.dbsession.scalar(select(func.count(Calculation.id)))
    return {'id': calculation.id, 'result': calculation.result,
            'count': count}


@task
def slow_add(request, x: float, y: float, seconds: int = 10):
    """Add two numbers, slowly: seed 000's ten-second add, made visible.

    Reports its progress each second, which is also where a revoked job
    stops (``request.report_progress`` raises ``TaskCancelled``).
    """
    if not 0 <= seconds <= MAX_SLOW_ADD_SECONDS:
        raise ValueError(f'seconds={seconds}: from 0 to '
                         f'{MAX_SLOW_ADD_SECONDS}')
    for elapsed in range(seconds):
        request.report_progress(elapsed, seconds, f'{elapsed}s of {seconds}s')
        time.sleep(1)
    request.report_progress(seconds, seconds, 'done')
    return x + y


def includeme(config):
    """Importing this module registers the tasks; those named here may also
    be started over HTTP (``POST /api/jobs``, see myapp.jobs)."""
    for exposed in (add, mul, xsum, record_sum, slow_add):
        config.expose_task(exposed)
