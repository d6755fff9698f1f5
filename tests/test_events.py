"""Lifecycle events: what subscribers see, and in which transaction."""
import pytest
import sqlalchemy.exc
import transaction
from celery import states
from pyramid.registry import Registry
from pyramid.scripting import prepare

from myapp import tasks
from myapp.celery_integration import (Origin, TaskEnqueued, TaskFailed,
                                      TaskProgress, TaskRetrying, TaskRevoked,
                                      TaskSent, TaskStarted, TaskSucceeded,
                                      task)
from myapp.celery_integration.configure import check_schedule
from myapp.celery_integration.events import (TaskEvent,
                                             notify_in_own_transaction)

from .jobs_support import transaction_of

calls = []


@task(max_retries=1)
def fails_once(request):
    calls.append(1)
    if len(calls) == 1:
        raise sqlalchemy.exc.OperationalError('SELECT', {},
                                              Exception('database is locked'))
    return 'second time lucky'


@task
def breaks(request):
    raise KeyError('missing')


@task
def counts_to(request, steps):
    for step in range(1, steps + 1):
        calls.append(step)
        request.report_progress(step, steps, f'step {step}')
    return steps


@task(max_retries=2)
def asks_for_a_retry(request):
    calls.append(1)
    if len(calls) == 1:
        request.celery_task.retry(countdown=0)
    return 'ok'


@task
def sends_another(request):
    tasks.add.delay(1, 2)


@pytest.fixture
def seen(app):
    """Every event notified, with whether a transaction was open for it."""
    events = []

    def record(event):
        in_transaction = event.request.tm.get() is not None
        events.append((type(event).__name__, event, in_transaction))

    for event_class in (TaskEnqueued, TaskSent, TaskStarted, TaskProgress,
                        TaskRetrying, TaskSucceeded, TaskFailed, TaskRevoked):
        app.registry.registerHandler(record, (event_class,))
    calls.clear()
    yield events
    for event_class in (TaskEnqueued, TaskSent, TaskStarted, TaskProgress,
                        TaskRetrying, TaskSucceeded, TaskFailed, TaskRevoked):
        app.registry.unregisterHandler(record, (event_class,))


def names(seen):
    return [name for name, _, _ in seen]


def test_a_run_is_started_then_succeeded_each_in_a_transaction(seen):
    result = tasks.add.apply((2, 3))
    assert names(seen) == ['TaskStarted', 'TaskSucceeded']
    started, succeeded = seen[0][1], seen[1][1]
    assert (started.task_name, started.task_id, started.args) == \
        ('myapp.tasks.add', result.id, (2, 3))
    assert succeeded.result == 5
    assert all(in_transaction for _, _, in_transaction in seen)


def test_a_failure_carries_the_exception_and_traceback(seen):
    breaks.apply()
    assert names(seen) == ['TaskStarted', 'TaskFailed']
    failed = seen[1][1]
    assert isinstance(failed.exc, KeyError)
    assert 'KeyError' in failed.traceback


def test_a_transient_error_is_announced_as_a_retry(seen):
    assert fails_once.apply().get() == 'second time lucky'
    assert names(seen) == ['TaskStarted', 'TaskRetrying', 'TaskStarted',
                           'TaskSucceeded']
    assert seen[1][1].retries == 1


def test_a_retry_the_task_asks_for_is_announced_before_it_is_sent(seen):
    asks_for_a_retry.apply()
    # Eager retries run inside retry(): the order shows what came first.
    assert names(seen)[:3] == ['TaskStarted', 'TaskRetrying', 'TaskStarted']
    assert seen[1][1].retries == 1


def test_a_subscriber_can_skip_a_run(app, seen):
    def veto(event):
        event.skip('already done elsewhere')

    app.registry.registerHandler(veto, (TaskStarted,))
    try:
        result = counts_to.apply((3,))
    finally:
        app.registry.unregisterHandler(veto, (TaskStarted,))
    assert calls == []
    assert names(seen) == ['TaskStarted']
    assert result.state == states.IGNORED


def test_progress_is_reported_and_a_subscriber_can_cancel(app, seen):
    def cancel_at_two(event):
        if event.current == 2:
            event.cancel()

    app.registry.registerHandler(cancel_at_two, (TaskProgress,))
    try:
        result = counts_to.apply((5,))
    finally:
        app.registry.unregisterHandler(cancel_at_two, (TaskProgress,))
    assert calls == [1, 2]
    progress = [event for name, event, _ in seen if name == 'TaskProgress']
    assert [(p.current, p.total, p.message) for p in progress] == \
        [(1, 5, 'step 1'), (2, 5, 'step 2')]
    assert names(seen)[-1] == 'TaskRevoked'
    assert tasks.add.AsyncResult(result.id).state == states.REVOKED


def test_enqueued_in_the_senders_transaction_then_sent(app, seen):
    env = prepare(registry=app.registry)
    env['request'].tm = transaction.TransactionManager(explicit=True)
    try:
        with env['request'].tm:
            result = tasks.add.apply_async((1, 2), countdown=5,
                                           origin='http')
            assert names(seen) == ['TaskEnqueued']
            enqueued = seen[0][1]
            assert enqueued.request is env['request']  # the sender's own
        assert names(seen) == ['TaskEnqueued', 'TaskSent']
    finally:
        env['closer']()
    assert (enqueued.task_id, enqueued.args, enqueued.origin) == \
        (result.id, [1, 2], Origin.http())
    assert enqueued.options['countdown'] == 5


def test_enqueued_outside_a_transaction_gets_its_own(seen):
    result = tasks.add.delay(1, 2)
    assert names(seen) == ['TaskEnqueued', 'TaskSent']
    assert seen[0][1].origin == Origin.shell()
    assert seen[0][2]  # a transaction was opened for it
    assert seen[1][1].task_id == result.id


def test_a_task_sent_by_a_task_names_its_parent(seen):
    parent = sends_another.apply()
    enqueued = [event for name, event, _ in seen if name == 'TaskEnqueued']
    assert [event.origin for event in enqueued] == [Origin.task(parent.id)]
    assert enqueued[0].origin.parent_id == parent.id


def test_periodic_jobs_are_sent_with_their_schedule_name(app, module_ini):
    from myapp.celery_integration import celery_app

    celery_app.conf.beat_schedule = {
        'tick': {'task': 'myapp.tasks.add', 'schedule': 1, 'args': [1, 2]}}
    try:
        check_schedule(module_ini)
        assert celery_app.conf.beat_schedule['tick']['options'] == \
            {'origin': 'beat:tick'}
    finally:
        celery_app.conf.beat_schedule = {}


def test_no_transaction_is_opened_without_subscribers(monkeypatch):
    opened = []
    monkeypatch.setattr('myapp.celery_integration.events.prepare',
                        lambda **kw: opened.append(kw))
    bare = Registry('bare')
    assert notify_in_own_transaction(bare, TaskSent, 'name', 'id') is None
    assert opened == []
    # A subscriber that does not use event.request opens nothing either.
    bare.registerHandler(lambda event: None, (TaskSent,))
    assert notify_in_own_transaction(bare, TaskSent, 'name', 'id').registry \
        is bare
    assert opened == []
    bare.registerHandler(lambda event: event.request, (TaskSent,))
    with pytest.raises(TypeError):  # the stand-in prepare returns None
        notify_in_own_transaction(bare, TaskSent, 'name', 'id')
    assert opened == [{'registry': bare}]


def test_an_own_transaction_commits_what_subscribers_did_or_aborts(app):
    from myapp.models import Calculation

    def writes(event):
        event.request.dbsession.add(Calculation(
            operation=event.task_id, operands=[], result=0))
        if event.task_id == 'raise':
            raise RuntimeError('subscriber failed')

    app.registry.registerHandler(writes, (TaskSent,))
    try:
        notify_in_own_transaction(app.registry, TaskSent, 'name', 'keep')
        with pytest.raises(RuntimeError):
            notify_in_own_transaction(app.registry, TaskSent, 'name', 'raise')
    finally:
        app.registry.unregisterHandler(writes, (TaskSent,))
    with transaction_of(app) as request:
        assert sorted(calculation.operation for calculation in
                      request.dbsession.query(Calculation)) == ['keep']


def test_event_details_become_attributes():
    event = TaskEvent(None, 'name', 'id', result=3)
    assert (event.task_name, event.task_id, event.result) == \
        ('name', 'id', 3)
