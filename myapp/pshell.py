"""``pshell INI``: the app's tasks, database and Celery at hand.

Sending a task here goes to the broker at once.  To write to the database,
open a transaction: ``with tm: dbsession.add(...)``; tasks sent inside it
leave when it commits.
"""
from . import models, tasks
from .celery_integration import celery_app

#: What pshell's banner says of each name.  pshell shows each object's
#: ``__doc__``, which for these is a class's or module's whole docstring
#: (Celery's runs to dozens of lines), so each gets a line of its own.
DESCRIPTIONS = {
    'tm': 'Transaction manager: "with tm:" around writes; tasks sent '
          'inside leave when it commits.',
    'dbsession': 'SQLAlchemy session, joined to tm.',
    'models': 'myapp.models: Calculation, Job.',
    'tasks': 'myapp.tasks: add, mul, xsum, record_sum, slow_add '
             '(e.g. tasks.add.delay(5, 10)).',
    'celery_app': 'The Celery app, configured from this ini '
                  '(celery_app.control.inspect().ping()).',
}


def setup(env):
    request = env['request']
    env['tm'] = request.tm
    env['dbsession'] = request.dbsession
    env['models'] = models
    env['tasks'] = tasks
    env['celery_app'] = celery_app
    for name, description in DESCRIPTIONS.items():
        env[name].__doc__ = description
