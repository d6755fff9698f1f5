"""The session: a signed cookie, which carries the CSRF token of the forms.

``session.secret`` in ``[app:main]`` signs it.  The environment variable
``MYAPP_SESSION_SECRET`` overrides that setting, so that production keeps
the secret out of its ini file; start-up stops, with one line, while neither
is set.  The secret itself is never printed.
"""
import os

from pyramid.session import SignedCookieSessionFactory
from pyramid.settings import asbool

from .celery_integration.errors import StartupError

SECRET_SETTING = 'session.secret'
SECRET_VARIABLE = 'MYAPP_SESSION_SECRET'


def session_secret(settings):
    secret = os.environ.get(SECRET_VARIABLE) or settings.get(SECRET_SETTING)
    if not secret:
        raise StartupError(f'no session secret: set the environment variable '
                           f'{SECRET_VARIABLE} (or "{SECRET_SETTING}" in '
                           '[app:main])')
    return secret


def includeme(config):
    settings = config.get_settings()
    secret = session_secret(settings)
    # Scripts never read the cookie; SameSite=Lax (the default) keeps it
    # off cross-site POSTs, a second line of defence behind the token.
    # session.secure = true (production.ini) sends it over HTTPS only.
    config.set_session_factory(SignedCookieSessionFactory(
        secret, httponly=True, secure=asbool(settings.get('session.secure'))))
