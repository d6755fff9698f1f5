import os

from pyramid.config import Configurator

from .celery_integration.errors import ConfigError, StartupError, suggest

#: Where myapp's own settings live, for the messages.
APP_SECTION = 'app:main'


def main(global_config, **settings):
    """Return the Pyramid WSGI application."""
    try:  # before the Configurator, which imports pyramid.includes
        check_app_settings(settings, global_config['__file__'])
    except ConfigError as exc:
        raise StartupError(str(exc)) from None
    with Configurator(settings=settings) as config:
        configure(config, global_config['__file__'])
    return config.make_wsgi_app()


def configure(config, ini_path):
    """Everything myapp adds to a configurator (``main`` and the HTTP
    benchmark's app, which adds one view of its own, both use it)."""
    config.include('pyramid_jinja2')
    config.include('myapp.views.times')
    config.include('myapp.sessions')
    config.include('myapp.models')
    config.include('myapp.security')
    config.include('myapp.celery_integration')
    config.configure_celery(ini_path)
    config.include('myapp.jobs')
    config.include('myapp.schedules')
    config.include('myapp.workers')
    config.include('myapp.tasks')
    config.include('myapp.monitoring')
    config.include('myapp.openapi')
    config.include('myapp.routes')
    config.scan('myapp.views')


def check_app_settings(settings, ini_path, environ=os.environ):
    """myapp's own settings in ``[app:main]``, checked before anything is
    built, so that each mistake is one line naming the key."""
    from .celery_integration.ini import module_exists
    from .celery_integration.settings import sqlalchemy_url_problem
    from .models import DATABASE_URL_VARIABLE
    from .schedules.lease import MINIMUM_LEASE_SECONDS

    def error(key, problem, hint=None):
        return ConfigError(ini_path, APP_SECTION, key, problem, hint)

    url = environ.get(DATABASE_URL_VARIABLE) or settings.get('sqlalchemy.url')
    if not (url or '').strip():
        raise error('sqlalchemy.url', 'missing', 'add e.g. sqlalchemy.url = '
                    'sqlite:///%(here)s/var/myapp.sqlite, or set '
                    f'{DATABASE_URL_VARIABLE}')
    problem = sqlalchemy_url_problem(url.strip())
    if problem:
        if environ.get(DATABASE_URL_VARIABLE):
            raise ConfigError(ini_path, None, None, f'{DATABASE_URL_VARIABLE}'
                              f' (which overrides sqlalchemy.url): '
                              f'{problem[0]}', problem[1])
        raise error('sqlalchemy.url', *problem)
    # A missing session.secret is myapp.sessions' own one line.
    lease = str(settings.get('schedules.lease_seconds', '6')).strip()
    if not lease.isdigit() or int(lease) < MINIMUM_LEASE_SECONDS:
        raise error('schedules.lease_seconds', f'"{lease}" is not a whole '
                    f'number of {MINIMUM_LEASE_SECONDS} or more',
                    'write e.g. schedules.lease_seconds = 6')
    for key, default, hint in BOOLEAN_SETTINGS:
        value = str(settings.get(key, default)).strip().lower()
        if value not in BOOLEAN_WORDS:
            raise error(key, f'"{value}" is not true or false', hint)
    attempts = str(settings.get('retry.attempts', '1')).strip()
    if not attempts.isdigit() or int(attempts) < 1:
        raise error('retry.attempts', f'"{attempts}" is not a whole number '
                    'of 1 or more', 'write e.g. retry.attempts = 3')
    includes = settings.get('pyramid.includes') or ''
    if isinstance(includes, str):
        includes = includes.replace(',', ' ').split()
    for name in includes:
        if isinstance(name, str) and not module_exists(name.split(':')[0]):
            raise error('pyramid.includes', f'no module named "{name}"',
                        suggest(name, KNOWN_INCLUDES)
                        or 'install it, or remove it from the list')


#: What pyramid.settings.asbool reads as true or false.
BOOLEAN_WORDS = ('true', 'yes', 'on', 'y', 't', '1',
                 'false', 'no', 'off', 'n', 'f', '0')

#: myapp's switches: (key, default, what to write).
BOOLEAN_SETTINGS = (
    ('auth.enabled', 'true', 'write auth.enabled = true (tokens and roles, '
     'as in production) or false (everyone may act)'),
    ('monitoring.open', 'true', 'write monitoring.open = true (anyone may '
     'ask /health) or false (a token is needed)'),
)

#: What an ini's ``pyramid.includes`` usually names.
KNOWN_INCLUDES = ('pyramid_debugtoolbar', 'pyramid_tm', 'pyramid_retry',
                  'pyramid_jinja2', 'pyramid_mako', 'pyramid_chameleon')
