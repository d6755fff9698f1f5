"""Signing in and out of the pages, with a token's name and secret.

The same tokens as the API's (``myapp_tokens``): a person signs in once,
and the session cookie carries the name (checked again on every request,
so a revoked token signs its sessions out).  With access control off,
these pages say so and sign in no one.
"""
from pyramid.csrf import check_csrf_token, new_csrf_token
from pyramid.httpexceptions import HTTPSeeOther
from pyramid.security import NO_PERMISSION_REQUIRED, forget, remember
from pyramid.view import view_config

from .. import tokens
from ..security import auth_enabled

LOGIN_PAGE = 'myapp:templates/login.jinja2'


@view_config(route_name='login', request_method='GET', renderer=LOGIN_PAGE,
             permission=NO_PERMISSION_REQUIRED)
def login_form(request):
    return login_values(request)


@view_config(route_name='login', request_method='POST', renderer=LOGIN_PAGE,
             permission=NO_PERMISSION_REQUIRED)
def login(request):
    check_csrf_token(request)
    name = request.POST.get('name', '').strip()
    secret = request.POST.get('token', '').strip()
    token = tokens.by_secret(request.dbsession, secret) if secret else None
    if not auth_enabled(request.registry.settings) or token is None \
            or token.name != name:
        request.response.status = 400
        return login_values(request, name=name,
                            error='That name and token do not match a '
                                  'token in use.')
    new_csrf_token(request)  # a new session: a new token for its forms
    headers = remember(request, token.name)
    return HTTPSeeOther(local_path(request.POST.get('next')),
                        headers=headers)


@view_config(route_name='logout', request_method='POST',
             permission=NO_PERMISSION_REQUIRED)
def logout(request):
    check_csrf_token(request)
    headers = forget(request)
    return HTTPSeeOther(request.route_url('home'), headers=headers)


def login_values(request, name='', error=None):
    return {'enabled': auth_enabled(request.registry.settings),
            'name': name, 'error': error,
            'next': local_path(request.params.get('next'))}


def local_path(path):
    """Where to go after signing in: a path of this site, never another
    site (``//evil.example`` and ``https://...`` are not paths here)."""
    if not path or not path.startswith('/') or path.startswith('//') \
            or '\\' in path:
        return '/'
    return path
