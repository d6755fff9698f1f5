def includeme(config):
    config.add_static_view('static', 'static', cache_max_age=3600)
    config.add_route('home', '/')
    # Jobs over HTTP (myapp.jobs.views)
    config.add_route('api.jobs', '/api/jobs')
    config.add_route('api.job', '/api/jobs/{id}')
    config.add_route('api.job.revoke', '/api/jobs/{id}/revoke')
    config.add_route('api.tasks', '/api/tasks')
