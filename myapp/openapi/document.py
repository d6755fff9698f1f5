"""The OpenAPI 3.1 document of this app, built when it is asked for.

The entries of :data:`.operations.OPERATIONS` say what each operation
takes and answers; the app says the rest, so that the two cannot drift
apart:

* the paths are the routes' patterns (:mod:`myapp.routes`);
* an operation is described only if a view serves it here (an app
  configured without a part of myapp, or before a view is written, does
  not promise it);
* the view's permission says whether a token is needed (and so 401 and
  403), and ``auth.enabled`` whether access control is on at all;
* the tasks a client may start are the app's exposed tasks;
* the server is ``myapp.url`` or the path the app is mounted at.
"""
import re
from importlib.metadata import version

from pyramid.interfaces import IDefaultPermission
from pyramid.security import NO_PERMISSION_REQUIRED

from ..jobs.exposure import exposed_tasks
from ..jobs.presentation import APP_URL_SETTING
from ..security import VIEW, auth_enabled
from .calls import task_call_schema
from .operations import OPERATIONS, answer
from .schemas import PARAMETERS, SCHEMAS, exposed_task_schema

OPENAPI_VERSION = '3.1.0'
BEARER_SCHEME = 'bearer'
TAGS = [
    {'name': 'jobs', 'description': 'start, follow, list, retry and revoke '
                                    'jobs'},
    {'name': 'schedules', 'description': 'periodic jobs, changed while beat '
                                         'runs'},
    {'name': 'workers', 'description': 'who runs jobs, what waits in the '
                                       'queues, what is stuck'},
    {'name': 'monitoring', 'description': 'for a load balancer or a '
                                          'monitoring system'},
    {'name': 'meta', 'description': 'this document'},
]
DESCRIPTION = (
    'Jobs over HTTP: Celery tasks started, followed, listed, retried and '
    'revoked, and periodic jobs.  Bodies are JSON, declared '
    'application/json (415 otherwise, even empty); unknown fields and query '
    'parameters are refused; errors are {"error": ..., "detail": ...}, and '
    'a request that fails records, queues and changes nothing.  A method a '
    'path does not take is a 405 with Allow.')


def document(request):
    """The document, for this app and this request."""
    registry = request.registry
    access_control = auth_enabled(registry.settings)
    served = served_views(registry)
    paths = {}
    for operation in OPERATIONS:
        permission = served.get((operation.route, operation.method))
        if permission is None:
            continue  # no view serves it in this app
        path = route_path(registry, operation.route)
        paths.setdefault(path, {})[operation.method.lower()] = \
            operation_object(operation, permission, access_control)
    return {
        'openapi': OPENAPI_VERSION,
        'info': {'title': 'myapp', 'version': version('myapp'),
                 'description': DESCRIPTION + access_note(access_control)},
        'servers': [{'url': server_url(request)}],
        'tags': TAGS,
        'paths': paths,
        'components': components(registry),
    }


def operation_object(operation, permission, access_control):
    security, refusals = access(permission, access_control)
    found = {'operationId': operation.operation_id,
             'tags': [operation.tag], 'summary': operation.summary}
    if operation.description:
        found['description'] = operation.description
    if operation.parameters:
        found['parameters'] = [{'$ref': f'#/components/parameters/{name}'}
                               for name in operation.parameters]
    if operation.body:
        found['requestBody'] = operation.body
    responses = {**operation.responses, **refusals}
    found['responses'] = {str(status): responses[status]
                          for status in sorted(responses)}
    if security:
        found['security'] = security
    return found


def access(permission, access_control):
    """(the security requirement, the refusals) of a view that needs
    ``permission``: none when anyone may, or access control is off; else a
    token (401 without a valid one) and, for what a viewer may not do,
    403."""
    if not access_control or permission == NO_PERMISSION_REQUIRED:
        return [], {}
    refusals = {401: {'$ref': '#/components/responses/Unauthorized'}}
    if permission != VIEW:
        refusals[403] = {'$ref': '#/components/responses/Forbidden'}
    return [{BEARER_SCHEME: []}], refusals


def access_note(access_control):
    if access_control:
        return ('  Access control is on: a viewer\'s token may look, an '
                'operator\'s may also act.')
    return ('  Access control is off here (auth.enabled = false): no '
            'operation needs a token.')


# -- what the app says ---------------------------------------------------

def served_views(registry):
    """``{(route name, METHOD): permission}`` of the views on routes, from
    Pyramid's introspector; a view without a permission has the default
    one (:mod:`myapp.security` makes it ``view``)."""
    default = registry.queryUtility(IDefaultPermission)
    served = {}
    for entry in registry.introspector.get_category('views'):
        view = entry['introspectable']
        if view['route_name'] is None:
            continue  # an exception view, or a view found by traversal
        permissions = [related['value'] for related in entry['related']
                       if related.category_name == 'permissions']
        # No permission and no default: anyone may (Pyramid's rule).
        permission = permissions[0] if permissions \
            else default or NO_PERMISSION_REQUIRED
        for method in methods_of(view['request_methods']):
            served[(view['route_name'], method)] = permission
    return served


def methods_of(request_methods):
    if request_methods is None:
        return ()  # any method: none that an entry could name
    if isinstance(request_methods, str):
        return (request_methods,)
    return tuple(request_methods)


#: A placeholder of a Pyramid route with its own regex: ``{id:\d+}``.
PLACEHOLDER_REGEX = re.compile(r'\{(\w+):[^}]*\}')


def route_path(registry, route_name):
    """The route's pattern as an OpenAPI path (``/api/jobs/{id}``)."""
    pattern = registry.introspector.get('routes', route_name)['pattern']
    return '/' + PLACEHOLDER_REGEX.sub(r'{\1}', pattern).lstrip('/')


def server_url(request):
    """``myapp.url`` when the ini sets it; else the path the app is
    mounted at, which a client reads relative to this document's address.
    Never the request's Host, which the client chooses (a cached document
    would send other clients, and their tokens, there)."""
    app_url = request.registry.settings.get(APP_URL_SETTING, '').strip()
    return app_url.rstrip('/') or request.script_name or '/'


def components(registry):
    exposed = exposed_tasks(registry)
    schemas = {**SCHEMAS, 'ExposedTask': exposed_task_schema(exposed),
               'TaskCall': task_call_schema(exposed)}
    return {
        'schemas': schemas,
        'parameters': PARAMETERS,
        'responses': REFUSALS,
        'securitySchemes': {BEARER_SCHEME: {
            'type': 'http', 'scheme': 'bearer',
            'description': 'a token made with "myapp_tokens INI create '
                           '--role viewer|operator NAME": a viewer may '
                           'look, an operator may also act'}},
    }


REFUSALS = {
    'Unauthorized': answer(
        'no token, or one that is unknown or revoked', 'Unauthorized',
        {'WWW-Authenticate': {'required': True, 'schema': {
            'type': 'string', 'examples': ['Bearer realm="myapp"']}}}),
    'Forbidden': answer('a token whose role may not do this (a viewer that '
                        'acts)', 'Forbidden'),
}
