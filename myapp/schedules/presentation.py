"""Periodic jobs as the API and the pages show them.

A periodic job is shown as it is stored (its definition, as one would
send it again) plus what people want to know: the schedule in words, when
it runs next, and how its last run went, from the job history (every run
beat sends, or "run now", has the origin ``beat:NAME``).

Times are in the job's own zone when it has one (a crontab job at 08:00 in
Europe/Paris is shown at 08:00+01:00), else in the app's, as
:func:`~myapp.jobs.presentation.format_time` shows every other time.
"""
import json

from sqlalchemy import select

from ..celery_integration import Origin, celery_app
from ..celery_integration.schedule_info import describe, next_run
from ..celery_integration.schedules import clocked
from ..jobs.presentation import format_time
from ..models import Job
from . import store


def schedule_json(dbsession, job):
    """The periodic job as the API shows it."""
    schedule, problem = built_schedule(job)
    zone = job.timezone or str(celery_app.timezone)

    def time(value):
        return zoned_time(value, job.timezone)

    return {
        'name': job.name,
        'task': job.task,
        'args': job.args,
        'kwargs': job.kwargs,
        'options': job.options,
        'type': job.type,
        'definition': job.schedule,
        'schedule': problem or describe(schedule, zone),
        'timezone': zone,
        'enabled': job.enabled,
        'source': job.source,
        'next_run_at': time(next_run_at(job, schedule)),
        'last_run_at': time(job.last_run_at),
        'total_runs': job.total_runs,
        'created_at': time(job.created_at),
        'changed_at': time(job.changed_at),
        'last_run': last_run_json(last_run(dbsession, job.name), time),
    }


def built_schedule(job):
    """(the Celery schedule beat evaluates, None), or (None, what is wrong)
    for a row written in SQL that beat would refuse: one such row must not
    take the whole list down."""
    try:
        return store.definition_of(job).celery_schedule(celery_app), None
    except (TypeError, ValueError, KeyError) as exc:
        return None, f'not a valid {job.type} schedule: {exc}'


def next_run_at(job, schedule):
    """When beat will send it next; None if it will not (disabled, or a
    clocked job that has run).  Beat counts from the last run, or from the
    job's creation if it never ran (a clocked job: it has not run)."""
    if not job.enabled or schedule is None:
        return None
    first = None if isinstance(schedule, clocked) else job.created_at
    return next_run(schedule, job.last_run_at or first)


def zoned_time(value, zone):
    """:func:`~myapp.jobs.presentation.format_time`, in ``zone`` when
    given (and known: a zone written in SQL may not be)."""
    try:
        return format_time(value, zone)
    except (KeyError, ValueError):
        return format_time(value)


def last_run(dbsession, name):
    """The newest job sent for this periodic job (its origin names it)."""
    return dbsession.scalars(
        select(Job).where(Job.origin == str(Origin.beat(name)))
        .order_by(Job.created_at.desc()).limit(1)).first()


def last_run_json(job, time):
    if job is None:
        return None
    return {'job': job.id, 'state': job.state,
            # The job's row is made as it is sent.
            'sent_at': time(job.created_at),
            'finished_at': time(job.finished_at)}


# -- the pages ---------------------------------------------------------

def form_values(job):
    """The edit form's fields as the job fills them: text, JSON as text,
    and ``enabled`` present when checked (as a browser sends it)."""
    values = {'task': job.task, 'type': job.type,
              'timezone': job.timezone or ''}
    for field in ('schedule', 'args', 'kwargs', 'options'):
        values[field] = json.dumps(getattr(job, field))
    if job.enabled:
        values['enabled'] = 'on'
    return values
