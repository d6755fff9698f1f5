"""A Pyramid app that is not myapp: the integration and one task, nothing
else (no database, no myapp models, tasks or views).

tests/test_standalone_integration.py runs it with a real worker: the README
says any Pyramid app can include ``myapp.celery_integration``.
"""
from pyramid.config import Configurator

from myapp.celery_integration import task


@task(name='standalone.double')
def double(request, x):
    """Twice ``x``, and the greeting in the settings of the registry that
    the task's request came from."""
    return {'doubled': 2 * x,
            'greeting': request.registry.settings['standalone.greeting']}


def main(global_config, **settings):
    with Configurator(settings=settings) as config:
        config.include('myapp.celery_integration')
        config.configure_celery(global_config['__file__'])
    return config.make_wsgi_app()
