"""Reading what API clients send; anything wrong is an :class:`ApiError`.

Checked strictly, and before anything is recorded or queued: an unknown
field or query parameter is an error, not something silently ignored (a
misspelt ``countdown`` would otherwise run the job at once).
"""
import datetime
import json
import math
import re
from dataclasses import dataclass, field

from ..models.job import STATES
from ..models.types import UTC
from .errors import ApiError
from .pagination import InvalidCursor, decode_cursor

#: Larger bodies are refused with 413 before they are parsed.
MAX_BODY_BYTES = 64 * 1024
MAX_COUNTDOWN_SECONDS = 366 * 24 * 3600
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
JOB_ID = re.compile(r'[A-Za-z0-9_.:-]{1,36}', re.ASCII)
QUEUE_NAME = re.compile(r'[A-Za-z0-9_.:@-]{1,200}', re.ASCII)
IDEMPOTENCY_KEY = re.compile(r'[\x21-\x7e][\x20-\x7e]{0,254}')


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
        body = parse_json(request.body.decode('utf-8'))
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, 'the body is not JSON', str(exc)) from None
    if not isinstance(body, dict):
        raise ApiError(400, 'the body must be a JSON object',
                       f'got {type(body).__name__}')
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise ApiError(400, 'unknown fields in the body',
                       {'unknown': unknown, 'allowed': sorted(fields)})
    return body


def check_body_size(request):
    if (request.content_length or 0) > MAX_BODY_BYTES \
            or len(request.body) > MAX_BODY_BYTES:
        raise ApiError(413, f'the body is larger than {MAX_BODY_BYTES} '
                       'bytes', {'limit': MAX_BODY_BYTES})


def parse_json(text):
    """Strict JSON: no NaN or Infinity, and no number too large for a
    float (``1e400`` would become Infinity, which JSON cannot carry)."""
    return json.loads(text, parse_constant=refuse_constant,
                      parse_float=finite_float)


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
    text = form.get(name, '').strip()
    if not text:
        return empty
    try:
        return parse_json(text)
    except (ValueError, RecursionError) as exc:
        raise invalid(name, f'not JSON: {exc}') from None


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
    """GET /api/jobs?task=&state=&limit=&before="""

    filters: dict
    limit: int
    before: tuple = None

    PARAMETERS = ('task', 'state', 'limit', 'before')

    @classmethod
    def from_request(cls, request):
        params = single_values(request.GET, cls.PARAMETERS)
        filters = {}
        if 'task' in params:
            filters['task_name'] = task_name(params['task'])
        if 'state' in params:
            if params['state'] not in STATES:
                raise invalid('state', f'one of {", ".join(STATES)}')
            filters['state'] = params['state']
        return cls(filters=filters, limit=page_size(params.get('limit')),
                   before=cursor(params.get('before')))


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
