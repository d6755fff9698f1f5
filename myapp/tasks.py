"""myapp's tasks.

Each receives the Pyramid request first (``request.dbsession``,
``request.registry``...) and runs in its own transaction: see
:mod:`myapp.celery_integration.task`.  Callers pass only the other
arguments: ``add.delay(5, 10)``.
"""
from sqlalchemy import func, select

from .celery_integration import task
from .models import Calculation


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


def includeme(config):
    """Importing this module registers the tasks; nothing else to set up."""
