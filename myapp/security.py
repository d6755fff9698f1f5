"""Who may do what: Pyramid's security policy, with two roles.

* **viewer** may look (permission ``view``: every page and every ``GET``);
* **operator** may also act (``operate``: start, retry, revoke, change
  periodic jobs), which views declare with ``permission='operate'``.

A request says who it is with an API token (``Authorization: Bearer
SECRET``) or, on the pages, by signing in with a token's name and secret
(``/login``; the session cookie then carries the name).  Tokens are made
with ``myapp_tokens`` (:mod:`myapp.tokens`).  Without a valid token, the
API answers 401 and a page sends to the sign-in page; with a role that may
not act, 403.  Nothing is recorded or queued either way: the permission is
checked before the view runs.

``auth.enabled = false`` (``development.ini``) lets everyone do
everything; it is on unless an ini says otherwise.  Every response also
carries the security headers of :data:`SECURITY_HEADERS`.
"""
from typing import NamedTuple

from pyramid.authentication import SessionAuthenticationHelper
from pyramid.authorization import ACLHelper, Allow, Authenticated, Everyone
from pyramid.events import BeforeRender, NewResponse
from pyramid.httpexceptions import HTTPSeeOther
from pyramid.security import Allowed
from pyramid.settings import asbool
from pyramid.view import forbidden_view_config

from .jobs.errors import error_response
from .models.token import OPERATOR, VIEWER
from . import tokens

VIEW, OPERATE = 'view', 'operate'
AUTH_SETTING = 'auth.enabled'
BEARER = 'bearer'

#: Every response: no MIME sniffing, no framing, no referrer to other
#: sites, and scripts, styles and requests from this site only (the pages
#: have no inline script or style).
SECURITY_HEADERS = {
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'same-origin',
    'Content-Security-Policy': "default-src 'self'; img-src 'self' data:; "
                               "object-src 'none'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
}


class Identity(NamedTuple):
    name: str
    role: str
    #: ``bearer`` (the Authorization header) or ``session`` (signed in).
    via: str


class Root:
    """The context of every view: what each role may do."""
    __acl__ = [
        (Allow, f'role:{VIEWER}', VIEW),
        (Allow, f'role:{OPERATOR}', (VIEW, OPERATE)),
    ]

    def __init__(self, request):
        self.request = request


class SecurityPolicy:
    def __init__(self, enabled):
        self.enabled = enabled
        self.session = SessionAuthenticationHelper()
        self.acl = ACLHelper()

    def identity(self, request):
        """Who the request is, or None (looked up once per request)."""
        if not self.enabled:
            return None
        if 'myapp.identity' not in request.environ:
            request.environ['myapp.identity'] = self.find_identity(request)
        return request.environ['myapp.identity']

    def find_identity(self, request):
        secret = bearer_secret(request)
        if secret is not None:
            token = tokens.by_secret(request.dbsession, secret)
            return None if token is None else \
                Identity(token.name, token.role, BEARER)
        name = self.session.authenticated_userid(request)
        if name is None:
            return None
        token = tokens.by_name(request.dbsession, name)
        if token is None or token.revoked_at is not None:
            return None  # revoked since: signed out at once
        return Identity(token.name, token.role, 'session')

    def authenticated_userid(self, request):
        identity = self.identity(request)
        return None if identity is None else identity.name

    def permits(self, request, context, permission):
        if not self.enabled:
            return Allowed(f'access control is off ({AUTH_SETTING} = false)')
        principals = [Everyone]
        identity = self.identity(request)
        if identity is not None:
            principals += [Authenticated, identity.name,
                           f'role:{identity.role}']
        return self.acl.permits(context, principals, permission)

    def remember(self, request, userid, **kw):
        return self.session.remember(request, userid, **kw)

    def forget(self, request, **kw):
        return self.session.forget(request, **kw)


def bearer_secret(request):
    """The secret of an ``Authorization: Bearer`` header; '' for a header
    of another scheme (a token that matches nothing), None for none."""
    header = request.headers.get('Authorization')
    if header is None:
        return None
    scheme, _, secret = header.strip().partition(' ')
    return secret.strip() if scheme.lower() == BEARER else ''


def auth_enabled(settings):
    return asbool(settings.get(AUTH_SETTING, True))


# -- refusals ---------------------------------------------------------------

#: What programs ask (the API, and monitoring's /health and /metrics):
#: refused there as JSON, not sent to the sign-in page.
PROGRAM_PATHS = r'^/(api(/|$)|health$|metrics$)'


@forbidden_view_config(path_info=PROGRAM_PATHS, renderer='json')
def api_refused(exc, request):
    """401 without a valid token, 403 for a role that may not."""
    identity = request.identity
    if identity is None:
        offered = bearer_secret(request) is not None
        return error_response(
            request, 401,
            'the token is not valid' if offered else 'a token is needed',
            'send Authorization: Bearer TOKEN, a token made with '
            'myapp_tokens INI create --role viewer|operator NAME',
            {'WWW-Authenticate': 'Bearer realm="myapp"'
             + (', error="invalid_token"' if offered else '')})
    return error_response(
        request, 403, f'the role "{identity.role}" may not do this',
        {'role': identity.role, 'needed': OPERATOR})


@forbidden_view_config(renderer='myapp:templates/forbidden.jinja2')
def page_refused(exc, request):
    """Not signed in: the sign-in page, coming back here after."""
    if request.identity is None:
        return HTTPSeeOther(request.route_url(
            'login', _query={'next': request.path_qs}))
    request.response.status = 403
    return {'role': request.identity.role}


# -- configuration ----------------------------------------------------------

def add_security_headers(event):
    for name, value in SECURITY_HEADERS.items():
        event.response.headers.setdefault(name, value)


def add_template_globals(event):
    """For the templates: ``auth_enabled`` (a "Sign in" link, or none),
    ``identity`` (who is signed in) and ``may_operate`` (the forms that act
    are shown only to those who may send them).

    A page answered before routing (a path that is not text: see
    :func:`myapp.jobs.inputs.request_text_tween`) has no context and no
    transaction to look anyone up in: no one is signed in there.
    """
    request = event.get('request')
    if request is None or \
            not str(event.get('renderer_name', '')).endswith('.jinja2'):
        return
    routed = hasattr(request, 'context')
    event['auth_enabled'] = auth_enabled(request.registry.settings)
    event['identity'] = request.identity if routed else None
    event['may_operate'] = routed and bool(request.has_permission(OPERATE))


def includeme(config):
    settings = config.get_settings()
    config.set_root_factory(Root)
    config.set_security_policy(SecurityPolicy(auth_enabled(settings)))
    # Every view needs at least "view"; those that act say "operate".
    config.set_default_permission(VIEW)
    config.add_subscriber(add_security_headers, NewResponse)
    config.add_subscriber(add_template_globals, BeforeRender)
    config.scan('.security')
