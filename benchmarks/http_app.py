"""myapp plus one hand-written view: the HTTP baseline of throughput.py.

``POST /bench/plain`` does what a user would write by hand in a Pyramid
view without myapp's jobs: insert one row (a ``Calculation``) in the
request's transaction (pyramid_tm) and send ``add`` once it has committed,
from a plain ``transaction`` after-commit hook.  The send is
``celery_app.send_task('myapp.tasks.add', ...)``: Celery's own path with
no ``PyramidTask.apply_async`` in it (``PyramidTask`` would record a job
row, defer the send to the commit itself and notify ``TaskSent``: the very
work being compared).  ``add`` has no options of its own, so Celery's
``Task.apply_async`` would send the same message; ``send_task`` names it
without going through the task class at all.

It lives here, not in ``myapp/``: the app is myapp's own configuration
(``myapp.configure``, what ``myapp.main`` runs) with this route and
view added, so both endpoints run in one process on one database.  An ini
uses it with::

    [app:main]
    use = call:benchmarks.http_app:main
"""
from celery.utils import uuid
from pyramid.config import Configurator

import myapp
from myapp.celery_integration import celery_app
from myapp.models import Calculation


def main(global_config, **settings):
    with Configurator(settings=settings) as config:
        myapp.configure(config, global_config['__file__'])
        config.add_route('bench.plain', '/bench/plain')
        config.add_view(plain_view, route_name='bench.plain',
                        request_method='POST', renderer='json')
    return config.make_wsgi_app()


def plain_view(request):
    """Insert one row and send ``add`` after commit; answer 202."""
    x, y = request.json_body['args']
    request.dbsession.add(Calculation(operation='sum', operands=[x, y],
                                      result=x + y))
    task_id = uuid()
    request.tm.get().addAfterCommitHook(send_after_commit,
                                        args=(task_id, x, y))
    request.response.status = 202
    return {'id': task_id}


def send_after_commit(committed, task_id, x, y):
    if committed:
        celery_app.send_task('myapp.tasks.add', (x, y), task_id=task_id)
