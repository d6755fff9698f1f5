"""What the API sends and answers, as JSON Schema (OpenAPI 3.1 speaks JSON
Schema 2020-12): ``components.schemas`` and ``components.parameters`` of
the document.

Written from the code that reads and writes them, and from its constants
(states, limits, patterns), so that a limit changed there changes here:
:mod:`myapp.jobs.inputs` for what clients send, :mod:`myapp.jobs.presentation`
and :mod:`myapp.schedules.presentation` for what they get back.  Answers
are closed (``additionalProperties: false``): a field added to an answer
without being described here fails tests/test_openapi.py.
"""
from ..celery_integration.schedules import (CRONTAB_FIELDS, PERIODIC_OPTIONS,
                                            SCHEDULE_TYPES, TIMEDELTA_FIELDS)
from ..jobs.inputs import (DEFAULT_PAGE_SIZE, FILTER_FIELDS, IDEMPOTENCY_KEY,
                           JOB_ID, MAX_BULK_JOBS, MAX_COUNTDOWN_SECONDS,
                           MAX_FILTER_TEXT, MAX_PAGE_SIZE, QUEUE_NAME)
from ..jobs.groups import MAX_LISTED
from ..jobs.presentation import PREVIEWED
from ..jobs.values import MAX_JSON_DEPTH, PREVIEW_CHARS
from ..models.job import STATES
from ..models.schedule import SOURCE_API, SOURCE_INI
from ..monitoring.health import CHECKS
from ..schedules.actions import NAME as SCHEDULE_NAME


def ref(name):
    return {'$ref': f'#/components/schemas/{name}'}


def closed(properties, required=None, **more):
    """An object with these properties and no others; all of them required
    unless ``required`` says which."""
    return {'type': 'object', 'properties': properties,
            'required': list(properties if required is None else required),
            'additionalProperties': False, **more}


def nullable(schema):
    """``schema`` or null (JSON Schema 2020-12 has no ``nullable``)."""
    kind = schema.get('type')
    if isinstance(kind, str):
        return {**schema, 'type': [kind, 'null']}
    return {'anyOf': [schema, {'type': 'null'}]}


def pattern(compiled):
    """A Python regex of :mod:`myapp.jobs.inputs`, anchored as ``fullmatch``
    reads it (JSON Schema's ``pattern`` matches anywhere)."""
    return f'^(?:{compiled.pattern})$'


TIME = {'type': 'string', 'format': 'date-time',
        'description': 'ISO 8601 with its offset, in the zone of [celery] '
                       'timezone (UTC if unset)'}
ANY_JSON = {'description': 'any JSON value'}
STATE = {'type': 'string', 'enum': list(STATES)}
#: The README's job: examples name it (tests/test_openapi.py makes it).
EXAMPLE_JOB_ID = '0c9a3d4e-4f0e-4b8a-9a57-6c1d0f2b7e31'
JOB_ID_SCHEMA = {'type': 'string', 'pattern': pattern(JOB_ID),
                 'examples': [EXAMPLE_JOB_ID]}
CURSOR = {'type': 'string', 'pattern': '^[A-Za-z0-9_-]+=*$',
          'description': 'the "next" of a previous answer, as it is'}
FILTER_TEXT = {'type': 'string', 'minLength': 1, 'maxLength': MAX_FILTER_TEXT}


# -- jobs ------------------------------------------------------------------

def previews():
    """``X_preview`` and ``X_truncated`` of each previewed value."""
    found = {}
    for name in PREVIEWED:
        found[f'{name}_preview'] = {
            'type': 'string', 'maxLength': PREVIEW_CHARS,
            'description': f'the start of the JSON of {name}, an ellipsis '
                           'last when cut'}
        found[f'{name}_truncated'] = {'type': 'boolean'}
    return found


JOB_PROPERTIES = {
    'id': {'type': 'string', 'maxLength': 36},
    'task': {'type': 'string'},
    'state': STATE,
    # Recorded as Celery's JSON carries them, or as their text when it
    # cannot (values only Python code, pshell, could send).
    'args': {'type': ['array', 'string']},
    'kwargs': {'type': ['object', 'string']},
    'result': ANY_JSON,
    'error': nullable(closed({
        'type': {'type': 'string', 'examples': ['ZeroDivisionError']},
        'message': {'type': ['string', 'null']}})),
    'progress': nullable(closed({
        'current': {'type': ['number', 'null']},
        'total': {'type': ['number', 'null']},
        'message': {'type': ['string', 'null']}})),
    'origin': {'type': 'string',
               'description': 'who sent it: http, shell, beat:NAME, '
                              'task:PARENT_ID or worker:HOST'},
    'parent_id': {'type': ['string', 'null']},
    'worker': {'type': ['string', 'null'], 'examples': ['celery@host']},
    'retries': {'type': 'integer', 'minimum': 0},
    'retry_of': {'type': ['string', 'null'],
                 'description': 'the failed or revoked job this one retries'},
    'group_id': {'type': ['string', 'null'],
                 'description': 'the group or chord it is in (GET '
                                '/api/groups/ID)'},
    'queue': {'type': ['string', 'null']},
    'eta': nullable(TIME),
    'sent_at': nullable({**TIME, 'description': 'null while the job is in '
                                                'the outbox'}),
    'created_at': TIME,
    'started_at': nullable(TIME),
    'finished_at': nullable(TIME),
    'retried_as': {'type': 'array', 'items': {'type': 'string'},
                   'description': 'the jobs that retry this one, oldest '
                                  'first'},
    'children': {'type': 'array', 'items': {'type': 'string'},
                 'maxItems': MAX_LISTED,
                 'description': 'the jobs it sent while it ran (a chain\'s '
                                'next step, a link...), oldest first'},
    **previews(),
}


#: What only ``GET /api/jobs/ID`` shows of a job: a look-up each.
ONE_JOB_ONLY = ('retried_as', 'children')


def listed_job():
    """A job as a list shows it: without :data:`ONE_JOB_ONLY`, and a
    value whose preview is cut is null (the job itself has it whole)."""
    properties = {name: schema for name, schema in JOB_PROPERTIES.items()
                  if name not in ONE_JOB_ONLY}
    for name in PREVIEWED:
        properties[name] = {'anyOf': [properties[name], {'type': 'null'}],
                            'description': f'null when {name}_truncated'}
    return closed(properties)


FILTER_PROPERTIES = {
    'task': {'type': 'string', 'minLength': 1,
             'examples': ['myapp.tasks.add']},
    'state': STATE,
    'origin': {**FILTER_TEXT, 'examples': ['http', 'beat:nightly-sum']},
    'worker': {**FILTER_TEXT, 'examples': ['celery@host']},
    'after': {**TIME, 'description': 'created at or after (ISO 8601; '
                                     'without an offset, in the app\'s zone)'},
    'until': {**TIME, 'description': 'created before (ISO 8601; without an '
                                     'offset, in the app\'s zone)'},
    'q': {**FILTER_TEXT, 'description': 'a job id, or text found in the JSON '
                                        'of its arguments (as written, not a '
                                        'pattern)'},
}


def bulk_request(extra=None, **more):
    """POST /api/jobs/retry and /api/jobs/revoke: ``ids``, or a filter of
    the list, not both (:class:`myapp.jobs.inputs.BulkRequest`)."""
    any_of_filters = {'anyOf': [{'required': [name]}
                                for name in ('before', *FILTER_FIELDS)]}
    return closed({
        'ids': {'type': 'array', 'items': JOB_ID_SCHEMA, 'minItems': 1,
                'maxItems': MAX_BULK_JOBS,
                'description': f'at most "limit" of them ({MAX_BULK_JOBS} '
                               'without one); ids that name no job are left '
                               'out'},
        'before': CURSOR,
        'limit': {'type': 'integer', 'minimum': 1, 'maximum': MAX_BULK_JOBS,
                  'default': MAX_BULK_JOBS},
        **FILTER_PROPERTIES,
        **(extra or {}),
    }, required=[], **{
        # Written as if/then/else rather than oneOf: the same rule, and
        # far cheaper for generators (schemathesis) to satisfy.
        'if': {'required': ['ids']},
        'then': {'not': any_of_filters},
        'else': any_of_filters,
    }, **more)


def skipped():
    return {'type': 'array', 'items': closed({
        'id': {'type': 'string'},
        'reason': {'type': 'string',
                   'examples': ['the job has already finished']}})}


JOB_SCHEMAS = {
    'Job': closed(JOB_PROPERTIES, description='a job, as GET /api/jobs/ID '
                  'shows it: args, kwargs and result whole'),
    'ListedJob': listed_job(),
    'JobList': closed({
        'jobs': {'type': 'array', 'items': ref('ListedJob'),
                 'maxItems': MAX_PAGE_SIZE,
                 'description': 'newest first'},
        'next': nullable({**CURSOR, 'description': 'pass it as "before" for '
                                                   'the next page; null on '
                                                   'the last one'})}),
    'Group': closed({
        'id': {'type': 'string'},
        'kind': {'type': 'string', 'enum': ['group', 'chord']},
        'size': {'type': 'integer', 'minimum': 0,
                 'description': 'its jobs (a chord\'s header)'},
        'counts': {'type': 'object',
                   'propertyNames': {'enum': list(STATES)},
                   'additionalProperties': {'type': 'integer', 'minimum': 1},
                   'description': 'how many of its jobs are in each state'},
        'state': {**STATE, 'description': 'FAILURE if a job failed; SUCCESS '
                                          'once all succeeded; REVOKED once '
                                          'all finished, some revoked; '
                                          'PENDING while none has started; '
                                          'else STARTED'},
        'finished': {'type': 'boolean'},
        'jobs': {'type': 'array', 'items': ref('ListedJob'),
                 'maxItems': MAX_LISTED, 'description': 'oldest first'},
        'callback': nullable(ref('ListedJob')),
    }, description='a group or chord as one unit'),
    'StartJob': closed({
        'task': ref('ExposedTask'),
        'args': {'type': 'array', 'default': []},
        'kwargs': {'type': 'object', 'default': {}},
        'countdown': {'type': 'number', 'minimum': 0,
                      'maximum': MAX_COUNTDOWN_SECONDS,
                      'description': 'seconds to wait'},
        'eta': {**TIME, 'description': 'when to run it, with its offset, '
                                       'e.g. 2030-01-01T12:00:00Z'},
        'queue': {'type': 'string', 'pattern': pattern(QUEUE_NAME)},
    }, required=['task'], allOf=[ref('TaskCall')],
        **{'not': {'required': ['countdown', 'eta']}},
        description='the arguments must fit the task (GET /api/tasks), '
                    f'nested at most {MAX_JSON_DEPTH} levels; "countdown" or '
                    '"eta", not both',
        examples=[{'task': 'myapp.tasks.add', 'args': [5, 10]},
                  {'task': 'myapp.tasks.slow_add', 'args': [2, 3],
                   'kwargs': {'seconds': 5}, 'countdown': 60}]),
    'RevokeJob': closed({'terminate': {'type': 'boolean', 'default': False,
                                       'description': 'kill the worker '
                                                      'process running it'}},
                        required=[], examples=[{}, {'terminate': True}]),
    'Empty': closed({}, description='nothing: an empty body, or {}'),
    'BulkRetry': bulk_request(examples=[
        {'task': 'myapp.tasks.add', 'state': 'FAILURE', 'limit': 50}]),
    'BulkRevoke': bulk_request(
        {'terminate': {'type': 'boolean', 'default': False}},
        examples=[{'ids': [EXAMPLE_JOB_ID], 'terminate': True}]),
    'BulkRetried': closed({
        'matched': {'type': 'integer', 'minimum': 0},
        'retried': {'type': 'array', 'items': closed({
            'id': {'type': 'string'},
            'retry': {'type': 'string', 'description': 'the new job'}})},
        'skipped': skipped(),
        'next': nullable({**CURSOR, 'description': 'send it as "before" for '
                                                   'the jobs after these'})}),
    'BulkRevoked': closed({
        'matched': {'type': 'integer', 'minimum': 0},
        'revoked': {'type': 'array', 'items': {'type': 'string'}},
        'skipped': skipped(),
        'next': nullable(CURSOR)}),
    'TaskList': closed({'tasks': {'type': 'array', 'items': closed({
        'name': {'type': 'string'},
        'description': {'type': 'string'},
        'parameters': {'type': 'array', 'items': closed({
            'name': {'type': 'string'},
            'kind': {'type': 'string', 'enum': [
                'positional_only', 'positional_or_keyword', 'var_positional',
                'keyword_only', 'var_keyword']},
            'annotation': {'type': ['string', 'null']},
            'required': {'type': 'boolean'},
            'default': ANY_JSON,
        }, required=['name', 'kind', 'annotation', 'required'])}})}}),
}


# -- periodic jobs -----------------------------------------------------

#: The README's periodic job, which examples name.
EXAMPLE_SCHEDULE = 'nightly-sum'


def schedule_of_type(kind, schedule):
    """``schedule`` is as ``type`` reads it (when the body gives a type)."""
    return {'if': {'properties': {'type': {'const': kind}},
                   'required': ['type']},
            'then': {'properties': {'schedule': schedule}}}


def fields_of(names, value):
    return {'type': 'object',
            'properties': {name: value for name in names},
            'additionalProperties': False}


NUMBER_TEXT = {'type': ['string', 'integer']}
SCHEDULES_BY_TYPE = {
    # Each field left out is "*": {} is every minute.
    'crontab': fields_of(CRONTAB_FIELDS, NUMBER_TEXT),
    'timedelta': {**fields_of(TIMEDELTA_FIELDS, {'type': 'number'}),
                  'minProperties': 1},
    'integer': {'type': 'number', 'exclusiveMinimum': 0,
                'description': 'seconds'},
    'solar': closed({'event': {'type': 'string',
                               'examples': ['sunset', 'dawn_civil']},
                     'latitude': {'type': 'number', 'minimum': -90,
                                  'maximum': 90},
                     'longitude': {'type': 'number', 'minimum': -180,
                                   'maximum': 180}}),
    'clocked': closed({'at': {'type': 'string',
                              'examples': ['2026-12-24T08:00:00'],
                              'description': 'ISO 8601, in "timezone" '
                                             'unless it has an offset'}}),
}
DEFINITION_PROPERTIES = {
    'task': ref('ExposedTask'),
    'type': {'type': 'string', 'enum': list(SCHEDULE_TYPES)},
    'schedule': {'description': 'as a [celerybeat:NAME] section\'s, as '
                                'JSON: see each type',
                 'type': ['object', 'number']},
    'args': {'type': 'array', 'default': []},
    'kwargs': {'type': 'object', 'default': {}},
    'options': {'type': 'object', 'default': {},
                'propertyNames': {'enum': list(PERIODIC_OPTIONS)},
                'description': 'apply_async options for each run'},
    'timezone': {'type': ['string', 'null'], 'default': None,
                 'examples': ['Europe/Paris'],
                 'description': 'a tz database name; null: the app\'s'},
    'enabled': {'type': 'boolean', 'default': True},
}


def definition(required, examples, **named):
    """A periodic job's definition as a request sends it."""
    return closed({**named, **DEFINITION_PROPERTIES}, required=required,
                  allOf=[ref('TaskCall')] + [
                      schedule_of_type(kind, schedule)
                      for kind, schedule in SCHEDULES_BY_TYPE.items()],
                  examples=examples)


SCHEDULE_SCHEMAS = {
    'Schedule': closed({
        'name': {'type': 'string'},
        'task': {'type': 'string'},
        'args': {'type': 'array'},
        'kwargs': {'type': 'object'},
        'options': {'type': 'object'},
        'type': {'type': 'string', 'examples': list(SCHEDULE_TYPES)},
        'definition': {**ANY_JSON, 'description': 'the schedule as sent'},
        'schedule': {'type': 'string', 'description': 'the schedule in words',
                     'examples': ['at 02:30 every day, Europe/Paris']},
        'timezone': {'type': 'string'},
        'enabled': {'type': 'boolean'},
        'source': {'type': 'string', 'enum': [SOURCE_INI, SOURCE_API]},
        'next_run_at': nullable({**TIME, 'description': 'null when disabled, '
                                                        'or a clocked job '
                                                        'that has run'}),
        'last_run_at': nullable(TIME),
        'total_runs': {'type': 'integer', 'minimum': 0},
        'created_at': TIME,
        'changed_at': TIME,
        'last_run': nullable(closed({
            'job': {'type': 'string'}, 'state': STATE, 'sent_at': TIME,
            'finished_at': nullable(TIME)})),
    }, description='times in the job\'s own zone when it has one'),
    'ScheduleList': closed({'schedules': {'type': 'array',
                                          'items': ref('Schedule')}}),
    'NewSchedule': definition(
        ['name', 'task', 'type', 'schedule'],
        name={'type': 'string', 'pattern': pattern(SCHEDULE_NAME)},
        examples=[{'name': EXAMPLE_SCHEDULE, 'task': 'myapp.tasks.xsum',
                   'args': [[1, 2, 3]], 'type': 'crontab',
                   'schedule': {'minute': '30', 'hour': '2'},
                   'timezone': 'Europe/Paris'}]),
    'ScheduleChange': definition([], examples=[{'enabled': False}]),
}


# -- the rest ----------------------------------------------------------

OTHER_SCHEMAS = {
    'Error': closed({
        'error': {'type': 'string'},
        'detail': {**ANY_JSON, 'description': 'what was wrong, or null'}},
        description='every error of the API, and nothing was recorded, '
                    'queued or changed'),
    'Unauthorized': closed({'error': {'type': 'string', 'enum': [
        'a token is needed', 'the token is not valid']},
        'detail': {'type': 'string'}}),
    'Forbidden': closed({'error': {'type': 'string'}, 'detail': closed({
        'role': {'type': 'string'}, 'needed': {'type': 'string'}})}),
    'Health': closed({
        'status': {'type': 'string', 'enum': ['ok', 'failing']},
        'checks': closed({name: closed({
            'ok': {'type': 'boolean'},
            'ms': {'type': 'number', 'minimum': 0},
            'error': {'type': 'string', 'description': 'when not ok'}},
            required=['ok', 'ms']) for name in CHECKS})}),
    'Worker': closed({
        'hostname': {'type': 'string'},
        'status': {'type': 'string', 'enum': ['online', 'gone', 'stopped']},
        'pid': {'type': 'integer'},
        'pool': {'type': 'string'},
        'concurrency': {'type': 'integer'},
        'queues': {'type': 'array', 'items': {'type': 'string'}},
        'active': {'type': 'array', 'items': {'type': 'string'},
                   'description': 'the jobs it ran at its last heartbeat '
                                  '(none once it is not online)'},
        'processed': {'type': 'integer', 'minimum': 0},
        'software': {'type': 'string'},
        'started_at': TIME, 'last_heartbeat': TIME,
        'stopped_at': nullable(TIME)}),
    'WorkerList': closed({
        'workers': {'type': 'array', 'items': ref('Worker')},
        'online': {'type': 'integer', 'minimum': 0}}),
    'QueueList': closed({'queues': {'type': 'array', 'items': closed({
        'name': {'type': 'string'},
        'messages': {'type': 'integer', 'minimum': 0},
        'workers': {'type': 'array', 'items': {'type': 'string'},
                    'description': 'the online workers consuming it'}})}}),
    'StuckJobs': closed({
        'jobs': {'type': 'array', 'items': ref('ListedJob')},
        'online': {'type': 'array', 'items': {'type': 'string'},
                   'description': 'the workers online now'}}),
    'OpenAPI': {'type': 'object', 'required': ['openapi', 'info', 'paths'],
                'description': 'this document'},
}

SCHEMAS = {**JOB_SCHEMAS, **SCHEDULE_SCHEMAS, **OTHER_SCHEMAS}


def exposed_task_schema(names):
    """The tasks that may be started over HTTP (``config.expose_task``):
    read from the app's registry when the document is asked for."""
    return {'type': 'string', 'enum': sorted(names),
            'description': 'an exposed task: GET /api/tasks lists them'}


# -- parameters ----------------------------------------------------------

#: One segment of a path: a route's {placeholder} takes no "/".
PATH_SEGMENT = {'type': 'string', 'pattern': '^[^/]+$'}


def query(name, schema, description=None):
    return {'name': name, 'in': 'query', 'required': False,
            'schema': schema, **({'description': description}
                                 if description else {})}


PARAMETERS = {
    'JobId': {'name': 'id', 'in': 'path', 'required': True,
              'schema': JOB_ID_SCHEMA,
              'description': 'a job id: at most 36 letters, digits or "_.:-"'},
    'GroupId': {'name': 'id', 'in': 'path', 'required': True,
                'schema': PATH_SEGMENT,
                'description': 'the id Celery gave the group or chord'},
    'ScheduleName': {'name': 'name', 'in': 'path', 'required': True,
                     'schema': {**PATH_SEGMENT,
                                'examples': [EXAMPLE_SCHEDULE]},
                     'description': 'the periodic job\'s name (those made '
                                    'over HTTP: 1 to 200 letters, digits or '
                                    '"_.-")'},
    'IdempotencyKey': {
        'name': 'Idempotency-Key', 'in': 'header', 'required': False,
        'schema': {'type': 'string', 'pattern': pattern(IDEMPOTENCY_KEY),
                   'examples': ['order-42']},
        'description': '1 to 255 printable ASCII characters, e.g. a UUID: '
                       'the same key answers the same job (each client\'s '
                       'own), another request with it is a 422'},
    **{f'filter.{name}': query(name, schema)
       for name, schema in FILTER_PROPERTIES.items()},
    'limit': query('limit', {'type': 'integer', 'minimum': 1,
                             'maximum': MAX_PAGE_SIZE,
                             'default': DEFAULT_PAGE_SIZE}),
    'before': query('before', CURSOR, 'the jobs after this cursor'),
}
