from pyramid.config import Configurator


def main(global_config, **settings):
    """Return the Pyramid WSGI application."""
    with Configurator(settings=settings) as config:
        configure(config, global_config['__file__'])
    return config.make_wsgi_app()


def configure(config, ini_path):
    """Everything myapp adds to a configurator (``main`` and the HTTP
    benchmark's app, which adds one view of its own, both use it)."""
    config.include('pyramid_jinja2')
    config.include('myapp.sessions')
    config.include('myapp.models')
    config.include('myapp.celery_integration')
    config.configure_celery(ini_path)
    config.include('myapp.jobs')
    config.include('myapp.tasks')
    config.include('myapp.routes')
    config.scan('myapp.views')
