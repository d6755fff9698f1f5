"""Bare Celery: a plain ``Celery()`` app and an ``add`` task, no Pyramid.

The baseline side of :mod:`benchmarks.throughput`.  Its worker is Celery's
own command, started from the repository root::

    MYAPP_BENCH_BARE_SETTINGS='{"broker_url": ...}' \\
        celery -A benchmarks.bare_app worker -c 2

The settings come as JSON in ``MYAPP_BENCH_BARE_SETTINGS`` (Celery's
lower-case names); throughput.py passes the very settings myapp reads from
an ini of the same broker and backend, so the two sides differ only by
myapp's code.  A process that imports this module without the variable
(throughput.py itself) calls :func:`configure`.
"""
import json
import os

from celery import Celery

SETTINGS_VARIABLE = 'MYAPP_BENCH_BARE_SETTINGS'

app = Celery('bare', set_as_current=False)


@app.task
def add(x, y):
    return x + y


def configure(settings):
    app.config_from_object(dict(settings), force=True)


if os.environ.get(SETTINGS_VARIABLE):
    configure(json.loads(os.environ[SETTINGS_VARIABLE]))
