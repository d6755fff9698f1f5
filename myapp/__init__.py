from pyramid.config import Configurator


def main(global_config, **settings):
    """Return the Pyramid WSGI application."""
    with Configurator(settings=settings) as config:
        config.include('pyramid_jinja2')
        config.include('.sessions')
        config.include('.models')
        config.include('.celery_integration')
        config.configure_celery(global_config['__file__'])
        config.include('.jobs')
        config.include('.tasks')
        config.include('.routes')
        config.scan('.views')
    return config.make_wsgi_app()
