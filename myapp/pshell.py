"""``pshell INI``: the app's tasks, database and Celery at hand.

Sending a task here goes to the broker at once.  To write to the database,
open a transaction: ``with tm: dbsession.add(...)``; tasks sent inside it
leave when it commits.
"""
from . import models, tasks
from .celery_integration import celery_app


def setup(env):
    request = env['request']
    env['tm'] = request.tm
    env['dbsession'] = request.dbsession
    env['models'] = models
    env['tasks'] = tasks
    env['celery_app'] = celery_app
