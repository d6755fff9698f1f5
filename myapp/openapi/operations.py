"""Every operation the document describes: one :class:`Operation` each,
in :data:`OPERATIONS`.

An entry names its route (:mod:`myapp.routes`) and method, and says what
the operation takes and answers.  The rest comes from the app when the
document is built (:mod:`.document`): the path, from the route; whether a
token is needed, and so the 401 and 403 answers, from the view's
permission.  To describe a new operation, add its entry to
:data:`OPERATIONS`: tests/test_openapi.py fails for an API route that has
none, and checks the app's answers against it.
"""
from dataclasses import dataclass

from .schemas import FILTER_PROPERTIES, ref


@dataclass(frozen=True)
class Operation:
    route: str
    method: str
    operation_id: str
    tag: str
    summary: str
    #: ``{status: response}``, made with :func:`answer` and :func:`error`;
    #: without the 401 and 403 of access control, which are added.
    responses: dict
    #: Names in ``components.parameters`` (:data:`.schemas.PARAMETERS`).
    parameters: tuple = ()
    #: A ``requestBody``, made with :func:`json_body`.
    body: dict = None
    description: str = ''


# -- what entries are made of ------------------------------------------

JSON = 'application/json'


def answer(description, schema, headers=None):
    found = {'description': description,
             'content': {JSON: {'schema': ref(schema)}}}
    if headers:
        found['headers'] = headers
    return found


def error(description):
    """An error of the API: ``{"error": ..., "detail": ...}``."""
    return answer(description, 'Error')


def json_body(schema, description=None):
    """A JSON body: declared ``application/json``, always, or 415."""
    found = {'required': True, 'content': {JSON: {'schema': ref(schema)}}}
    if description:
        found['description'] = description
    return found


#: Where the job (or periodic job) made is: root-relative, or from
#: ``myapp.url``, never from the request's Host.
LOCATION = {'Location': {
    'required': True, 'schema': {'type': 'string'},
    'description': 'its address: root-relative (/api/jobs/ID), or absolute '
                   'from myapp.url when the ini sets it'}}
TOO_LARGE = error('a body larger than 64 KB, refused before it is read')
NOT_JSON = error('a body not declared application/json, even an empty one '
                 '(what another site can make a browser send: a form, '
                 'text/plain, nothing)')
BAD_BODY = ('the body is not JSON, not an object, or has an unknown field, '
            'a field of the wrong type, JSON nested too deeply, text with '
            'NUL or that is not UTF-8')
BAD_JOB_ID = 'a job id that is not one'
NO_SUCH_JOB = error('no such job')
EMPTY = json_body('Empty', 'empty, or {}; declared application/json all '
                           'the same')
JOB_STARTED = answer('the job, queued (sent when the request commits; if '
                     'the broker cannot take it then, it is sent again by '
                     'the sweeper)', 'Job', LOCATION)
LIST_FILTERS = tuple(f'filter.{name}' for name in FILTER_PROPERTIES)


# -- the operations ----------------------------------------------------

#: Jobs over HTTP (myapp.jobs.api).
JOB_OPERATIONS = (
    Operation(
        'api.jobs', 'GET', 'listJobs', 'jobs', 'List jobs, newest first',
        parameters=LIST_FILTERS + ('limit', 'before'),
        description='Each filter given narrows the list.  Pages are cut by '
                    '(creation time, id): pass "next" as "before".',
        responses={
            200: answer('a page of jobs; a value longer than its preview '
                        'is null here', 'JobList'),
            400: error('a filter, limit or cursor that is not one; an '
                       'unknown or repeated parameter')}),
    Operation(
        'api.jobs', 'POST', 'startJob', 'jobs', 'Start a job',
        parameters=('IdempotencyKey',), body=json_body('StartJob'),
        responses={
            202: JOB_STARTED,
            400: error(f'{BAD_BODY}; a bad countdown, eta or queue; a task '
                       'that is not exposed; arguments that do not fit the '
                       'task; a bad Idempotency-Key'),
            413: TOO_LARGE, 415: NOT_JSON,
            422: error('an Idempotency-Key already used for another request '
                       '(the answer names no job)')}),
    Operation(
        'api.job', 'GET', 'showJob', 'jobs', 'A job, its values whole',
        parameters=('JobId',),
        responses={200: answer('the job', 'Job'), 400: error(BAD_JOB_ID),
                   404: NO_SUCH_JOB}),
    Operation(
        'api.group', 'GET', 'showGroup', 'jobs',
        'A group or chord as one unit', parameters=('GroupId',),
        responses={200: answer('the group, its jobs and its chord\'s '
                               'callback', 'Group'),
                   404: error('no job is in such a group')}),
    Operation(
        'api.job.revoke', 'POST', 'revokeJob', 'jobs', 'Revoke a job',
        parameters=('JobId',),
        body=json_body('RevokeJob', 'may be empty; declared '
                                    'application/json all the same'),
        description='A queued job never runs; a running one stops at its '
                    'next progress report, or at once with "terminate".  '
                    'Revoking a revoked job again is fine.',
        responses={
            202: answer('the job, now REVOKED', 'Job'),
            400: error(f'{BAD_BODY}; {BAD_JOB_ID}'), 404: NO_SUCH_JOB,
            409: error('the job has already finished'),
            413: TOO_LARGE, 415: NOT_JSON}),
    Operation(
        'api.job.retry', 'POST', 'retryJob', 'jobs',
        'Start a failed or revoked job again, as a new job',
        parameters=('JobId',), body=EMPTY,
        description='The same task, arguments and options, but not the '
                    'first job\'s times: a retry runs now.',
        responses={
            202: JOB_STARTED,
            400: error(f'{BAD_BODY}; {BAD_JOB_ID}; a task no longer exposed, '
                       'or arguments that no longer fit it'),
            404: NO_SUCH_JOB,
            409: error('the job is neither FAILURE nor REVOKED'),
            413: TOO_LARGE, 415: NOT_JSON}),
    Operation(
        'api.jobs.retry', 'POST', 'retryJobs', 'jobs',
        'Retry many jobs: by id, or by the list\'s filter',
        body=json_body('BulkRetry'),
        description='Each job is retried as one would be; the others are '
                    'skipped, saying why.',
        responses={
            202: answer('what was matched, retried and skipped',
                        'BulkRetried'),
            400: error(f'{BAD_BODY}; neither or both of ids and a filter, a '
                       'limit out of range, an id or filter that is not '
                       'one'),
            413: TOO_LARGE, 415: NOT_JSON}),
    Operation(
        'api.jobs.revoke', 'POST', 'revokeJobs', 'jobs',
        'Revoke many jobs: by id, or by the list\'s filter',
        body=json_body('BulkRevoke'),
        responses={
            202: answer('what was matched, revoked and skipped',
                        'BulkRevoked'),
            400: error(f'{BAD_BODY}; neither or both of ids and a filter, a '
                       'limit out of range, an id or filter that is not '
                       'one'),
            413: TOO_LARGE, 415: NOT_JSON}),
    Operation(
        'api.tasks', 'GET', 'listTasks', 'jobs',
        'The tasks that may be started, with their parameters',
        responses={200: answer('the exposed tasks, by name', 'TaskList')}),
)

NO_SUCH_SCHEDULE = error('no such periodic job')
BAD_DEFINITION = ('a bad name, an unknown schedule type, a schedule its '
                  'type does not take, an unknown time zone, an option a '
                  'periodic job cannot take, a task that is not exposed, '
                  'arguments that do not fit the task')

#: Periodic jobs over HTTP (myapp.schedules.api).
SCHEDULE_OPERATIONS = (
    Operation(
        'api.schedules', 'GET', 'listSchedules', 'schedules',
        'Every periodic job, by name',
        responses={200: answer('the periodic jobs', 'ScheduleList')}),
    Operation(
        'api.schedules', 'POST', 'createSchedule', 'schedules',
        'Add a periodic job', body=json_body('NewSchedule'),
        description='Beat sends it from its next tick.',
        responses={
            201: answer('the periodic job', 'Schedule', LOCATION),
            400: error(f'{BAD_BODY}; {BAD_DEFINITION}'),
            409: error('a name already taken'),
            413: TOO_LARGE, 415: NOT_JSON}),
    Operation(
        'api.schedule', 'GET', 'showSchedule', 'schedules',
        'A periodic job', parameters=('ScheduleName',),
        responses={200: answer('the periodic job', 'Schedule'),
                   404: NO_SUCH_SCHEDULE}),
    Operation(
        'api.schedule', 'PATCH', 'changeSchedule', 'schedules',
        'Change a periodic job: the fields sent, the others stay',
        parameters=('ScheduleName',), body=json_body('ScheduleChange'),
        description='A job of the ini may only be disabled and enabled.',
        responses={
            200: answer('the periodic job', 'Schedule'),
            400: error(f'{BAD_BODY}; {BAD_DEFINITION}'),
            404: NO_SUCH_SCHEDULE,
            409: error('a change (but for "enabled") to a job of the ini'),
            413: TOO_LARGE, 415: NOT_JSON}),
    Operation(
        'api.schedule', 'DELETE', 'deleteSchedule', 'schedules',
        'Remove a periodic job made over HTTP',
        parameters=('ScheduleName',),
        responses={204: {'description': 'removed'},
                   404: NO_SUCH_SCHEDULE,
                   409: error('a job of the ini: remove its section')}),
    Operation(
        'api.schedule.run', 'POST', 'runSchedule', 'schedules',
        'Send one run now, as beat would', parameters=('ScheduleName',),
        body=EMPTY,
        description='Whether or not the job is enabled; beat\'s own '
                    'schedule does not move.',
        responses={
            202: JOB_STARTED, 400: error(BAD_BODY), 404: NO_SUCH_SCHEDULE,
            409: error('a task that is gone from the code, or one of '
                       'Celery\'s own, which leaves no job to follow'),
            413: TOO_LARGE, 415: NOT_JSON}),
)

#: This document, and monitoring (myapp.monitoring).
OTHER_OPERATIONS = (
    Operation(
        'api.openapi', 'GET', 'openapi', 'meta', 'This document',
        responses={200: answer('the OpenAPI document', 'OpenAPI')}),
    Operation(
        'health', 'GET', 'health', 'monitoring',
        'Can the app reach its database, broker and result backend?',
        description='Each check is bounded (3 s).  Open to anyone unless '
                    'monitoring.open = false.',
        responses={200: answer('all three answer', 'Health'),
                   503: answer('one does not: what each said', 'Health')}),
    Operation(
        'metrics', 'GET', 'metrics', 'monitoring',
        'The app\'s metrics, for Prometheus',
        description='Open to anyone unless monitoring.open = false.',
        responses={200: {'description': 'the Prometheus text format, or '
                                        'OpenMetrics if Accept asks for it',
                         'content': {media_type: {'schema': {
                             'type': 'string'}} for media_type in (
                             'text/plain', 'application/openmetrics-text')}}}),
)

#: Who runs jobs, what waits, what is stuck (myapp.workers.api).
WORKER_OPERATIONS = (
    Operation(
        'api.workers', 'GET', 'listWorkers', 'workers',
        'Every worker seen, online or not',
        description='Each worker writes its heartbeat in the database; one '
                    'that missed five is "gone", one that stopped cleanly '
                    '"stopped".',
        responses={200: answer('the workers', 'WorkerList'),
                   400: error('an unknown or repeated parameter')}),
    Operation(
        'api.queues', 'GET', 'listQueues', 'workers',
        'The messages waiting in each queue',
        description='Asked of the broker, bounded (3 s).',
        responses={200: answer('each queue, its depth and its consumers',
                               'QueueList'),
                   400: error('an unknown or repeated parameter'),
                   503: error('the broker did not answer')}),
    Operation(
        'api.jobs.stuck', 'GET', 'listStuckJobs', 'workers',
        'Jobs left running on a worker that is not online',
        parameters=('limit',),
        responses={200: answer('the stuck jobs, newest first', 'StuckJobs'),
                   400: error('a limit that is not one; an unknown or '
                              'repeated parameter')}),
)

#: Every operation, in the order of the document.
OPERATIONS = (JOB_OPERATIONS + SCHEDULE_OPERATIONS + WORKER_OPERATIONS
              + OTHER_OPERATIONS)
