"""Reading what API clients send; anything wrong is an :class:`ApiError`.

Checked strictly, and before anything is recorded or queued: an unknown
field or query parameter is an error, not something silently ignored (a
misspelt ``countdown`` would otherwise run the job at once).

Text comes in two ways, and each is checked in one place:

* the path, the query string and form fields, by :func:`request_text_tween`
  for every route, before any view (or transaction) runs: text that is not
  UTF-8, or holds NUL (which PostgreSQL refuses), is refused there, so no
  view ever sees it;
* JSON documents (bodies, the form's ``args`` and ``kwargs``), by
  :func:`parse_json` and :func:`check_json`: nested at most
  :data:`~.values.MAX_JSON_DEPTH` levels, finite numbers, strings without
  NUL or lone surrogates (``"\\ud800"``).
"""
import datetime
import io
import json
import math
import re
import urllib.parse
from dataclasses import dataclass, field

from pyramid.httpexceptions import HTTPBadRequest
from pyramid.renderers import render_to_response
from pyramid.response import Response
from webob.compat import cgi_FieldStorage

from ..celery_integration import celery_app
from ..models.job import STATES
from ..models.types import UTC
from .errors import API_PATHS, ApiError
from .pagination import EVERY_JOB, InvalidCursor, JobFilter, decode_cursor
from .values import (MAX_JSON_DEPTH, UnfitValue, check_json_value,
                     text_problem)

#: Larger bodies are refused with 413 before they are parsed.
MAX_BODY_BYTES = 64 * 1024
MAX_COUNTDOWN_SECONDS = 366 * 24 * 3600
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
QUEUE_NAME = re.compile(r'[A-Za-z0-9_.:@-]{1,200}', re.ASCII)
JOB_ID = re.compile(r'[A-Za-z0-9_.:-]{1,36}', re.ASCII)
IDEMPOTENCY_KEY = re.compile(r'[\x21-\x7e][\x20-\x7e]{0,254}')
#: What narrows a list of jobs (:class:`~.pagination.JobFilter`), as a
#: client names it.
FILTER_FIELDS = ('task', 'state', 'origin', 'worker', 'after', 'until', 'q')
#: The longest text an origin, a worker or a search may be.
MAX_FILTER_TEXT = 255


#: The only type of body the API reads.  A web page can make a browser
#: POST to another site without asking (a "simple" cross-site request)
#: with a text/plain or form body, never with a JSON one.
JSON_TYPE = 'application/json'


def invalid(name, problem, status=400):
    return ApiError(status, f'invalid "{name}"', problem)


# -- bodies ------------------------------------------------------------

def json_body(request, fields, empty_ok=False):
    """The body as a JSON object with no keys but ``fields``.

    Declared as JSON even when empty (415 otherwise), so that another site
    cannot make a visitor's browser start or revoke jobs.
    """
    if request.content_type != JSON_TYPE:
        raise ApiError(415, f'the body must be sent as {JSON_TYPE}',
                       {'content_type': request.content_type or None})
    check_body_size(request)
    if empty_ok and not request.body.strip():
        return {}
    try:
        text = request.body.decode('utf-8')
    except UnicodeDecodeError as exc:
        raise ApiError(400, 'the body is not JSON', str(exc)) from None
    key = too_deep(text)
    if key is not None:
        raise invalid(key if key in fields else 'body', TOO_DEEP)
    try:
        body = parse_json(text)
    except ValueError as exc:
        raise ApiError(400, 'the body is not JSON', str(exc)) from None
    if not isinstance(body, dict):
        raise ApiError(400, 'the body must be a JSON object',
                       f'got {type(body).__name__}')
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise ApiError(400, 'unknown fields in the body',
                       {'unknown': unknown, 'allowed': sorted(fields)})
    for name, value in body.items():
        check_json(value, name)
    return body


def check_body_size(request):
    if (request.content_length or 0) > MAX_BODY_BYTES \
            or len(request.body) > MAX_BODY_BYTES:
        raise ApiError(413, f'the body is larger than {MAX_BODY_BYTES} '
                       'bytes', {'limit': MAX_BODY_BYTES})


def parse_json(text):
    """Strict JSON: no NaN or Infinity, and no number too large for a
    float (``1e400`` would become Infinity, which JSON cannot carry), at
    any depth.  Call :func:`too_deep` first: the parser recurses."""
    return json.loads(text, parse_constant=refuse_constant,
                      parse_float=finite_float)


TOO_DEEP = f'nested deeper than {MAX_JSON_DEPTH} levels'
#: A JSON string, or one character of JSON's structure.
JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[][{}:]')
OPENING, CLOSING = '[{', ']}'


def too_deep(text, depth=1):
    """None if the JSON ``text``, its root at level ``depth`` of a body,
    nests at most :data:`~.values.MAX_JSON_DEPTH` levels; else the key of
    the root object under which it nests deeper ('' if none).

    Read without parsing (the parser recurses, and reaches Python's
    recursion limit some 950 levels down), in one pass over its tokens; a
    text with fewer brackets than the limit is not even read.
    """
    if text.count('[') + text.count('{') <= MAX_JSON_DEPTH - depth + 1:
        return None
    level, key, string = depth - 1, '', None
    for token in JSON_TOKENS.findall(text):
        if token in OPENING:
            level += 1
            if level > MAX_JSON_DEPTH:
                return key
        elif token in CLOSING:
            level -= 1
        elif token == ':':
            if level == depth and string is not None:
                key = json_string(string)
        else:
            string = token
    return None


def json_string(token):
    try:
        return json.loads(token)
    except ValueError:
        return token


def check_json(value, name, depth=2):
    """Refuse ``value``, the field ``name`` of a body (level 2 of it), unless
    it is JSON a job can carry (:func:`~.values.check_json_value`)."""
    try:
        check_json_value(value, depth)
    except UnfitValue as exc:
        raise invalid(name, str(exc)) from None


def refuse_constant(name):
    raise ValueError(f'{name} is not JSON')


def finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f'{text} is too large for a number')
    return value


@dataclass
class StartRequest:
    """POST /api/jobs: which task, its arguments, and when/where to run."""

    task: str
    args: list
    kwargs: dict
    #: ``apply_async`` options: ``countdown``, ``eta``, ``queue``.
    options: dict = field(default_factory=dict)

    FIELDS = ('task', 'args', 'kwargs', 'countdown', 'eta', 'queue')

    @classmethod
    def from_request(cls, request):
        return cls.from_body(json_body(request, cls.FIELDS))

    @classmethod
    def from_form(cls, request):
        """The dashboard's form: ``task``, and ``args`` and ``kwargs`` as
        JSON text, as large as a JSON body may be."""
        check_body_size(request)
        form = request.POST
        return cls.from_body({
            'task': form.get('task', ''),
            'args': json_field(form, 'args', empty=[]),
            'kwargs': json_field(form, 'kwargs', empty={}),
        })

    @classmethod
    def from_body(cls, body):
        """From the fields of a JSON body, or of the dashboard's form."""
        return cls(task=task_name(body.get('task')),
                   args=typed(body, 'args', list, [], 'an array'),
                   kwargs=typed(body, 'kwargs', dict, {}, 'an object'),
                   options=schedule_options(body))


def json_field(form, name, empty):
    """A field of the form, JSON text read as the field of a JSON body."""
    text = form.get(name, '').strip()
    if not text:
        return empty
    if too_deep(text, depth=2) is not None:
        raise invalid(name, TOO_DEEP)
    try:
        value = parse_json(text)
    except ValueError as exc:
        raise invalid(name, f'not JSON: {exc}') from None
    check_json(value, name)
    return value


def task_name(value):
    if not isinstance(value, str) or not value:
        raise invalid('task', 'the name of a task, e.g. "myapp.tasks.add"; '
                      'GET /api/tasks lists them')
    return value


def typed(body, name, kind, default, description):
    value = body.get(name, default)
    if not isinstance(value, kind):
        raise invalid(name, f'must be {description}')
    return value


def schedule_options(body):
    options = {}
    if 'countdown' in body and 'eta' in body:
        raise ApiError(400, 'give "countdown" or "eta", not both')
    if 'countdown' in body:
        options['countdown'] = countdown(body['countdown'])
    if 'eta' in body:
        options['eta'] = eta(body['eta'])
    if 'queue' in body:
        if not isinstance(body['queue'], str) \
                or not QUEUE_NAME.fullmatch(body['queue']):
            raise invalid('queue', 'a queue name: letters, digits, '
                          '"_.:@-", at most 200')
        options['queue'] = body['queue']
    return options


def countdown(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not 0 <= value <= MAX_COUNTDOWN_SECONDS:
        raise invalid('countdown', 'seconds to wait, a number from 0 to '
                      f'{MAX_COUNTDOWN_SECONDS}')
    return value


def eta(value):
    try:
        # Python < 3.11 does not read the "Z" of UTC.
        moment = datetime.datetime.fromisoformat(re.sub('Z$', '+00:00',
                                                        value))
        moment = moment.astimezone(UTC) if moment.tzinfo else None
    except (TypeError, ValueError, OverflowError):
        moment = None
    if moment is None:
        raise invalid('eta', 'an ISO 8601 time with its UTC offset, e.g. '
                      '"2030-01-01T12:00:00Z"')
    return moment


def revoke_terminate(request):
    """POST /api/jobs/{id}/revoke: optional {"terminate": true}."""
    body = json_body(request, ('terminate',), empty_ok=True)
    terminate = body.get('terminate', False)
    if not isinstance(terminate, bool):
        raise invalid('terminate', 'true or false')
    return terminate


#: The most jobs one bulk retry or revoke acts on; ``next`` in its answer
#: continues with the jobs after them.
MAX_BULK_JOBS = 100


@dataclass
class BulkRequest:
    """POST /api/jobs/retry and /api/jobs/revoke: the jobs, by id, or by
    the list's filter (``task``, ``state``, ``before``), newest first, at
    most ``limit`` of them (:data:`MAX_BULK_JOBS`)."""

    ids: list = None
    filter: JobFilter = EVERY_JOB
    before: tuple = None
    limit: int = MAX_BULK_JOBS
    terminate: bool = False

    FIELDS = ('ids', 'before', 'limit') + FILTER_FIELDS
    FILTERS = ('before',) + FILTER_FIELDS

    @classmethod
    def from_request(cls, request, terminate=False):
        """``terminate`` (revoke only): the body may ask for it too."""
        body = json_body(request, cls.FIELDS + (('terminate',) if terminate
                                                 else ()))
        filtered = [name for name in cls.FILTERS if name in body]
        if ('ids' in body) == bool(filtered):
            raise ApiError(400, 'say which jobs: "ids", or a filter of the '
                           'list (' + ', '.join(f'"{name}"' for name in
                                                cls.FILTERS) + '), not both',
                           {'given': sorted(body)})
        asked = cls(limit=bulk_limit(body.get('limit', MAX_BULK_JOBS)),
                    terminate=typed(body, 'terminate', bool, False,
                                    'true or false'))
        if 'ids' in body:
            asked.ids = job_ids(body['ids'], asked.limit)
        asked.filter = job_filter(body)
        if 'before' in body:
            if not isinstance(body['before'], str):
                raise invalid('before', 'the "next" value of a previous '
                              'answer')
            asked.before = cursor(body['before'])
        return asked


def bulk_limit(value):
    if isinstance(value, bool) or not isinstance(value, int) \
            or not 1 <= value <= MAX_BULK_JOBS:
        raise invalid('limit', f'a number from 1 to {MAX_BULK_JOBS}')
    return value


def job_ids(value, limit):
    if not isinstance(value, list) or not value or len(value) > limit \
            or not all(isinstance(each, str) and JOB_ID.fullmatch(each)
                       for each in value):
        raise invalid('ids', f'a list of 1 to {limit} job ids')
    return list(dict.fromkeys(value))  # each once, in the order given


# -- headers, path and query ---------------------------------------------

def idempotency_key(request):
    key = request.headers.get('Idempotency-Key')
    if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
        raise invalid('Idempotency-Key', 'from 1 to 255 printable ASCII '
                      'characters, e.g. a UUID')
    return key


def job_id(request):
    value = request.matchdict['id']
    if not JOB_ID.fullmatch(value):
        raise invalid('id', 'a job id: at most 36 letters, digits or "_.:-"')
    return value


@dataclass
class ListQuery:
    """GET /api/jobs?task=&state=&origin=&worker=&after=&until=&q=&limit=
    &before="""

    filter: JobFilter
    limit: int
    before: tuple = None

    PARAMETERS = FILTER_FIELDS + ('limit', 'before')

    @classmethod
    def from_request(cls, request):
        params = single_values(request.GET, cls.PARAMETERS)
        return cls(filter=job_filter(params),
                   limit=page_size(params.get('limit')),
                   before=cursor(params.get('before')))


def job_filter(values):
    """The :class:`~.pagination.JobFilter` of query parameters or of a
    body's fields (``values``, by name; an empty one is a mistake, as in
    any field: a form that means "any" leaves it out)."""
    given = {name: value for name, value in values.items()
             if name in FILTER_FIELDS}
    asked = {}
    if 'task' in given:
        asked['task'] = task_name(given['task'])
    if 'state' in given:
        if given['state'] not in STATES:
            raise invalid('state', f'one of {", ".join(STATES)}')
        asked['state'] = given['state']
    for name, field_name in (('origin', 'origin'), ('worker', 'worker'),
                             ('q', 'text')):
        if name in given:
            asked[field_name] = filter_text(name, given[name])
    for name in ('after', 'until'):
        if name in given:
            asked[name] = filter_time(name, given[name])
    return JobFilter(**asked)


def filter_text(name, value):
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_FILTER_TEXT \
            or text_problem(value):
        raise invalid(name, f'text of 1 to {MAX_FILTER_TEXT} characters')
    return value


def filter_time(name, value):
    """An ISO 8601 time (``2026-12-06T08:00:00+09:00``); one without an
    offset is read in the app's zone, as the pages show times.  The
    database compares in UTC: a time UTC cannot hold
    (``0001-01-01T00:00:00+05:00``) is refused here, not a 500 there."""
    try:
        moment = datetime.datetime.fromisoformat(value) \
            if isinstance(value, str) else None
        if moment is not None:
            moment = in_app_zone(moment)
            moment.astimezone(UTC)  # OverflowError if UTC cannot hold it
    except (ValueError, OverflowError):
        moment = None
    if moment is None:
        raise invalid(name, 'an ISO 8601 time, e.g. '
                      '"2026-12-06T08:00:00+09:00"')
    return moment


def in_app_zone(moment):
    """``moment`` as it is, or read in the app's zone if it has none."""
    if moment.tzinfo is not None:
        return moment
    zone = celery_app.timezone
    return zone.localize(moment) if hasattr(zone, 'localize') \
        else moment.replace(tzinfo=zone)


def single_values(query, names):
    unknown = sorted(set(query) - set(names))
    if unknown:
        raise ApiError(400, 'unknown query parameters',
                       {'unknown': unknown, 'allowed': list(names)})
    repeated = sorted(name for name in set(query)
                      if len(query.getall(name)) > 1)
    if repeated:
        raise ApiError(400, 'query parameters given more than once',
                       repeated)
    return dict(query)


def page_size(value):
    if value is None:
        return DEFAULT_PAGE_SIZE
    if not re.fullmatch('[0-9]{1,4}', value) \
            or not 1 <= int(value) <= MAX_PAGE_SIZE:
        raise invalid('limit', f'a number from 1 to {MAX_PAGE_SIZE}')
    return int(value)


def cursor(value):
    if value is None:
        return None
    try:
        return decode_cursor(value)
    except InvalidCursor:
        raise invalid('before', 'the "next" value of a previous page') \
            from None


# -- every request's text ------------------------------------------------

#: Form bodies, as WebOb reads them (``request.POST``).
FORM_TYPES = ('application/x-www-form-urlencoded', 'multipart/form-data')
UTF8 = ('utf-8', 'utf8')


def request_text_tween(handler, registry):
    """Answer a request whose path, query string or form is not text a
    view can take, before any view or transaction: UTF-8 without NUL.

    WebOb decodes them strictly as UTF-8, or not at all: a path or a query
    parameter that is not UTF-8 (``%ff``, an overlong ``%C0%80``, an
    encoded surrogate ``%ED%A0%80``) made ``request.path_info`` and
    ``request.GET`` raise, even in the error views; NUL (``%00``) reached
    PostgreSQL, which refuses it in text.  A path answers 404 (no resource
    has such a name), a query parameter or form field 400; under ``/api``
    in JSON.  A form that WebOb cannot read (a bad multipart boundary, a
    charset other than UTF-8) is a 400 too, not an exception in the view's
    CSRF check.  Added by :mod:`myapp.routes`, outside pyramid_tm.
    """
    def request_text(request):
        refusal = text_refusal(request)
        return handler(request) if refusal is None else refusal

    return request_text


def text_refusal(request):
    """The answer to a request with text no view can take, or None."""
    environ = request.environ
    api = re.match(API_PATHS, environ.get('PATH_INFO', '')) is not None
    path = wsgi_text(environ.get('PATH_INFO', ''))
    if text_problem(path):
        return path_refused(request, api, path)
    # The API reads JSON bodies only (415 for a form): no form to check.
    problem = query_problem(environ.get('QUERY_STRING', '')) \
        or (None if api else form_problem(request))
    if problem is None:
        return None
    name, detail = problem
    if api:
        return json_response(400, f'invalid "{name}"', detail)
    return HTTPBadRequest(f'"{name}": {detail}')


def wsgi_text(text):
    """What WSGI hands over (bytes as latin-1) decoded as UTF-8, bytes it
    cannot decode kept as lone surrogates (which :func:`text_problem`
    names)."""
    return text.encode('latin-1').decode('utf-8', 'surrogateescape')


def path_refused(request, api, path):
    shown = urllib.parse.quote(path, safe='/', errors='surrogateescape')
    if api:
        return json_response(404, 'not found', {
            'path': shown, 'problem': text_problem(path)})
    response = render_to_response('myapp:templates/404.jinja2', {},
                                  request=request)
    response.status = 404
    return response


def query_problem(query):
    """(parameter, problem) of the first query parameter that is not
    text, or None; read as WebOb reads them."""
    for pair in re.split('[&;]', query.replace('+', ' ')):
        name, _, value = pair.partition('=')
        name, value = (wsgi_text(urllib.parse.unquote(part, 'latin-1'))
                       for part in (name, value))
        if text_problem(name):
            return 'query', f'a parameter name: {text_problem(name)}'
        if text_problem(value):
            return name, text_problem(value)
    return None


def form_problem(request):
    """(field, problem) of a form body WebOb would read as
    ``request.POST`` but cannot, or whose fields are not text; or None."""
    content_type = request.content_type
    if content_type not in ('',) + FORM_TYPES \
            or (request.method != 'POST' and not content_type):
        return None
    if request.charset != 'UTF-8':  # which WebOb refuses to read
        return 'body', 'a form must be sent in UTF-8'
    environ = dict(request.environ, QUERY_STRING='')
    environ.setdefault('CONTENT_LENGTH', '0')
    try:
        form = cgi_FieldStorage(
            fp=io.BytesIO(request.body), environ=environ,
            keep_blank_values=True, encoding='utf-8', errors='strict')
        fields = list(form.list or ())
    except UnicodeDecodeError as exc:
        return 'body', f'a form that is not UTF-8 text: {exc.reason}'
    except Exception as exc:  # the cgi module's parser: ValueError and more
        return 'body', f'a form that cannot be read: {exc}'
    for part in fields:
        if part.type_options.get('charset', 'utf-8').lower() not in UTF8:
            return part.name or 'body', 'a form field must be UTF-8'
        texts = [part.name or '', part.filename or '']
        if not part.filename:
            texts.append(part.value)
        for text in texts:
            if isinstance(text, str) and text_problem(text):
                return part.name or 'body', text_problem(text)
    return None


def json_response(status, error, detail=None):
    """The API's error (:mod:`.errors`), where no view can answer."""
    response = Response(status=status, content_type='application/json',
                        charset='utf-8')
    response.text = json.dumps({'error': error, 'detail': detail})
    return response
