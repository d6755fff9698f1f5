"""A form sent without its CSRF token (or with another session's) is refused
with a page that says what to do, and nothing it asked for is done."""
from pyramid.exceptions import BadCSRFToken
from pyramid.view import exception_view_config


@exception_view_config(BadCSRFToken,
                       renderer='myapp:templates/csrf_refused.jinja2')
def csrf_refused(exc, request):
    request.response.status = exc.status
    return {}
