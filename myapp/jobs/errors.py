"""JSON errors for everything under /api/: ``{"error": ..., "detail": ...}``.

Views raise :class:`ApiError`; Pyramid's own 404 (no such path), 405 (a
path with no view for the method) and any other HTTP error are answered in
the same shape, and an unexpected exception is a JSON 500 (and logged).
An error response aborts the request's transaction (pyramid_tm), so
nothing it recorded or queued survives.
"""
import logging

from pyramid.httpexceptions import HTTPException, HTTPNotFound
from pyramid.view import view_config

log = logging.getLogger(__name__)

API_PATHS = r'^/api(/|$)'


class ApiError(Exception):
    def __init__(self, status, error, detail=None, headers=None):
        super().__init__(error)
        self.status, self.error, self.detail = status, error, detail
        self.headers = headers or {}


def error_response(request, status, error, detail=None, headers=None):
    response = request.response
    response.status = status
    response.headers.update(headers or {})
    return {'error': error, 'detail': detail}


@view_config(context=ApiError, renderer='json')
def api_error(exc, request):
    return error_response(request, exc.status, exc.error, exc.detail,
                          exc.headers)


@view_config(context=HTTPNotFound, path_info=API_PATHS, renderer='json')
def not_found_or_method_not_allowed(exc, request):
    # A route matched, but none of its views takes this method.
    if request.matched_route is not None:
        allowed = allowed_methods(request, request.matched_route.name)
        if allowed and request.method not in allowed:
            return error_response(
                request, 405, 'method not allowed',
                {'method': request.method, 'allowed': allowed},
                {'Allow': ', '.join(allowed)})
    return error_response(request, 404, 'not found',
                          {'path': request.path_info})


@view_config(context=HTTPException, path_info=API_PATHS, renderer='json')
def http_error(exc, request):
    # Keep what the error says (Allow, Retry-After, WWW-Authenticate...),
    # not how its HTML page was sent.
    headers = {name: value for name, value in exc.headers.items()
               if not name.lower().startswith('content-')}
    return error_response(request, exc.code, exc.title.lower(), exc.detail,
                          headers)


# A retryable error (pyramid_retry) propagates until the last attempt, so
# that the request is tried again.
@view_config(context=Exception, path_info=API_PATHS, retryable_error=False,
             renderer='json')
def unexpected_error(exc, request):
    log.exception('%s %s failed', request.method, request.path_info)
    return error_response(request, 500, 'internal error')


def allowed_methods(request, route_name):
    """The methods the route's views take, from Pyramid's introspector."""
    introspector = request.registry.introspector
    route = introspector.get('routes', route_name)
    methods = set()
    for related in introspector.related(route):
        if related.category_name == 'views':
            taken = related['request_methods'] or ()
            methods.update([taken] if isinstance(taken, str) else taken)
    if 'GET' in methods:
        methods.add('HEAD')
    return sorted(methods)
