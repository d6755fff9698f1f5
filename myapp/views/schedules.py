"""The periodic jobs of the ini: ``GET /api/schedules`` and ``/schedules``."""
from pyramid.view import view_config
from sqlalchemy import select

from ..celery_integration import Origin, celery_app
from ..celery_integration.schedule_info import describe, next_run
from ..jobs.presentation import format_time
from ..models import Job


def periodic_jobs(request):
    """Each ``[celerybeat:NAME]`` job: what it runs, when, and how it went."""
    zone = str(celery_app.timezone)
    return [periodic_job(request, name, entry, zone)
            for name, entry in sorted(
                (celery_app.conf.beat_schedule or {}).items())]


def periodic_job(request, name, entry, zone):
    last = last_run(request, name)
    return {
        'name': name,
        'task': entry['task'],
        'args': entry.get('args', []),
        'kwargs': entry.get('kwargs', {}),
        'schedule': describe(entry['schedule'], zone),
        'timezone': zone,
        # Beat counts from its last send; the job's creation is that moment.
        'next_run_at': format_time(
            next_run(entry['schedule'], last.created_at if last else None)),
        'last_run': None if last is None else {
            'job': last.id,
            'state': last.state,
            'sent_at': format_time(last.created_at),
            'finished_at': format_time(last.finished_at),
        },
    }


def last_run(request, name):
    """The newest job beat sent for this schedule (its origin names it)."""
    return request.dbsession.scalars(
        select(Job).where(Job.origin == str(Origin.beat(name)))
        .order_by(Job.created_at.desc()).limit(1)).first()


@view_config(route_name='api.schedules', request_method='GET',
             renderer='json')
def schedules_json(request):
    return {'schedules': periodic_jobs(request)}


@view_config(route_name='schedules', request_method='GET',
             renderer='myapp:templates/schedules.jinja2')
def schedules_page(request):
    return {'schedules': periodic_jobs(request)}
