from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.tweens import INGRESS


def includeme(config):
    # Before any route: a path, query string or form that is not UTF-8
    # text, or holds NUL, is refused (myapp.jobs.inputs).
    config.add_tween('myapp.jobs.inputs.request_text_tween', under=INGRESS)
    config.add_static_view('static', 'static', cache_max_age=3600,
                           permission=NO_PERMISSION_REQUIRED)
    config.add_route('home', '/')
    # Monitoring (myapp.monitoring)
    config.add_route('health', '/health')
    config.add_route('metrics', '/metrics')
    # The API's OpenAPI document (myapp.openapi)
    config.add_route('api.openapi', '/api/openapi.json')
    # Workers and queues: the API (myapp.workers.api) and the page
    # (myapp.workers.pages)
    config.add_route('api.workers', '/api/workers')
    config.add_route('api.queues', '/api/queues')
    config.add_route('workers', '/workers')
    config.add_route('workers.rerun', '/workers/stuck/{id}/rerun')
    # Signing in and out (myapp.views.auth)
    config.add_route('login', '/login')
    config.add_route('logout', '/logout')
    # Periodic jobs: the API (myapp.schedules.api) and the pages
    # (myapp.schedules.pages)
    config.add_route('api.schedules', '/api/schedules')
    config.add_route('api.schedule', '/api/schedules/{name}')
    config.add_route('api.schedule.run', '/api/schedules/{name}/run')
    config.add_route('schedules', '/schedules')
    config.add_route('schedule', '/schedules/{name}')
    config.add_route('schedule.enabled', '/schedules/{name}/enabled')
    config.add_route('schedule.run', '/schedules/{name}/run')
    config.add_route('schedule.delete', '/schedules/{name}/delete')
    # Jobs over HTTP (myapp.jobs.api)
    config.add_route('api.jobs', '/api/jobs')
    # Before api.job, whose {id} would take "retry", "revoke" and "stuck".
    config.add_route('api.jobs.retry', '/api/jobs/retry')
    config.add_route('api.jobs.revoke', '/api/jobs/revoke')
    config.add_route('api.jobs.stuck', '/api/jobs/stuck')
    config.add_route('api.job', '/api/jobs/{id}')
    config.add_route('api.job.retry', '/api/jobs/{id}/retry')
    config.add_route('api.job.revoke', '/api/jobs/{id}/revoke')
    config.add_route('api.tasks', '/api/tasks')
    config.add_route('api.group', '/api/groups/{id}')
    # Job pages (myapp.jobs.pages) and seed 000's flow (myapp.views.seed)
    config.add_route('jobs', '/jobs')
    # Before job, whose {id} would take "retry" and "revoke".
    config.add_route('jobs.retry', '/jobs/retry')
    config.add_route('jobs.revoke', '/jobs/revoke')
    config.add_route('job', '/jobs/{id}')
    config.add_route('job.cancel', '/jobs/{id}/cancel')
    config.add_route('job.retry', '/jobs/{id}/retry')
    config.add_route('group', '/groups/{id}')
    config.add_route('seed.add', '/seed/add')
    config.add_route('seed.result', '/seed/add/{id}')
