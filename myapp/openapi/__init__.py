"""The API's OpenAPI 3.1 document: ``GET /api/openapi.json``.

``config.include('myapp.openapi')`` adds the view on the route of
:mod:`myapp.routes`.  Anyone may read it, as a client generator or an API
browser must before it has a token.

* :mod:`.operations`: one entry per operation, what it takes and
  answers (add an operation there);
* :mod:`.schemas`: the bodies, answers and parameters, as JSON Schema;
* :mod:`.document`: the document, built from both and from the app (its
  routes, views, permissions, exposed tasks and settings).

``tests/test_openapi.py`` keeps it true: every API route is described, and
schemathesis sends generated requests to every operation and checks each
answer against the document.
"""
from pyramid.security import NO_PERMISSION_REQUIRED

from .document import document


def openapi_document(request):
    return document(request)


def includeme(config):
    config.add_view(openapi_document, route_name='api.openapi',
                    request_method='GET', renderer='json',
                    permission=NO_PERMISSION_REQUIRED)
