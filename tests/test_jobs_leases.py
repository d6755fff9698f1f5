"""Nothing stuck: leases on running jobs, lost runs sent again, every end
recorded (time limits, results that cannot be stored).

In-process (``Task.apply`` stands in for a worker); the real worker kills
are in tests/test_jobs_faults.py.
"""
import datetime

from billiard.exceptions import WorkerLostError
from celery.exceptions import TimeLimitExceeded
from sqlalchemy import func, select

from myapp import tasks
from myapp.celery_integration import ResultTooLarge, TaskSucceeded, task
from myapp.celery_integration.configure import announce_lost_or_timed_out
from myapp.jobs import leases, lifecycle
from myapp.jobs.tasks import send_unsent
from myapp.models import Calculation
from myapp.models.types import utcnow

from .jobs_support import load_job, set_state, transaction_of

EXPIRED = utcnow() - datetime.timedelta(seconds=1)


@task(rerun_if_lost=False)
def charge_card(request, amount):
    return amount


@task(max_result_bytes=100)
def big_result(request, size):
    request.dbsession.add(Calculation(operation='big', operands=[size],
                                      result=size))
    return 'x' * size


def running(app, task=tasks.add, args=(1, 2), lease=EXPIRED,
            worker='w1@host', **columns):
    """A job a worker claimed and holds a lease on (expired by default)."""
    job_id = task.apply_async(args).id
    set_state(app, job_id, 'STARTED', worker=worker, lease_expires_at=lease,
              **columns)
    return job_id


def sweep():
    return send_unsent.apply().get()


def test_a_claim_takes_a_lease(app):
    job_id = tasks.add.apply_async((1, 2)).id
    with transaction_of(app) as request:
        lifecycle.start(request.dbsession, job_id, 'w1@host', 0)
    job = load_job(app, job_id)
    assert lifecycle.LEASE - datetime.timedelta(seconds=5) < \
        job.lease_expires_at - utcnow() <= lifecycle.LEASE


def test_a_run_that_ends_gives_its_lease_back(app):
    job_id = tasks.add.apply_async((1, 2)).id
    tasks.add.apply((1, 2), task_id=job_id)
    job = load_job(app, job_id)
    assert (job.state, job.lease_expires_at) == ('SUCCESS', None)


def test_a_lost_run_is_sent_again_by_the_sweeper(app, published):
    job_id = running(app)
    published.clear()
    assert sweep() == 1
    assert published == [job_id]
    job = load_job(app, job_id)
    assert (job.state, job.lost_runs, job.worker, job.lease_expires_at) == \
        ('PENDING', 1, None, None)
    assert job.sent_at is not None
    tasks.add.apply((1, 2), task_id=job_id)  # the new delivery runs it
    assert load_job(app, job_id).state == 'SUCCESS'


def test_a_live_run_is_left_alone_and_not_started_twice(app, published):
    job_id = running(app, lease=utcnow() + lifecycle.LEASE)
    published.clear()
    assert sweep() == 0 and published == []
    # A copy of its message (Redis redelivers after its visibility
    # timeout) does not run it a second time while the first run lives.
    tasks.add.apply((1, 2), task_id=job_id)
    assert load_job(app, job_id).state == 'STARTED'


def test_a_lost_run_whose_success_is_in_the_result_backend_succeeds(
        app, published):
    """Its process died after the run, before the journal wrote SUCCESS:
    the result backend has it, so the job is not run again."""
    job_id = running(app)
    tasks.add.backend.mark_as_done(job_id, 3)
    published.clear()
    assert sweep() == 0 and published == []
    job = load_job(app, job_id)
    assert (job.state, job.result, job.lease_expires_at) == \
        ('SUCCESS', 3, None)


def test_lost_runs_are_sent_again_when_the_backend_cannot_say(
        app, published, monkeypatch):
    job_ids = [running(app), running(app)]
    for job_id in job_ids:
        tasks.add.backend.mark_as_done(job_id, 3)
    asked = []

    def unreachable(task_id, cache=True):
        asked.append(task_id)
        raise ConnectionError('the result backend is away')

    monkeypatch.setattr(tasks.add.backend, 'get_task_meta', unreachable)
    published.clear()
    assert sweep() == 2 and sorted(published) == sorted(job_ids)
    assert [load_job(app, job_id).state for job_id in job_ids] == \
        ['PENDING', 'PENDING']
    assert len(asked) == 1  # once away, not asked again in that sweep


def test_a_task_that_must_not_run_twice_fails_instead(app, published):
    job_id = running(app, charge_card, (10,))
    published.clear()
    assert sweep() == 0 and published == []
    job = load_job(app, job_id)
    assert (job.state, job.error_type) == \
        ('FAILURE', 'billiard.exceptions.WorkerLostError')
    assert 'w1@host stopped extending its lease' in job.error_message


def test_a_job_lost_again_and_again_fails(app, published):
    job_id = running(app, lost_runs=lifecycle.MAX_LOST_RUNS - 1)
    assert sweep() == 0
    job = load_job(app, job_id)
    assert job.state == 'FAILURE' and 'lost 3 times' in job.error_message


def test_the_keeper_extends_only_the_leases_its_worker_holds(app):
    mine = running(app, lease=utcnow())
    ended = running(app, lease=utcnow())
    set_state(app, ended, 'SUCCESS')
    theirs = running(app, lease=utcnow(), worker='w2@host')
    keeper = leases.LeaseKeeper(app.registry['dbsession_factory'],
                                lifecycle.LEASE)
    for job_id in (mine, ended, theirs):
        keeper.hold(job_id, 'w1@host')
    keeper.extend()
    assert set(keeper.held) == {mine}
    assert load_job(app, mine).lease_expires_at > \
        utcnow() + lifecycle.LEASE - datetime.timedelta(seconds=5)
    assert load_job(app, theirs).lease_expires_at < utcnow()


# -- ends that the worker's main process sees ------------------------------

def test_a_dead_pool_process_sends_its_job_again_at_once(app, published):
    job_id = running(app, lease=utcnow() + lifecycle.LEASE)
    published.clear()
    announce_lost_or_timed_out(sender=tasks.add, task_id=job_id,
                               exception=WorkerLostError('signal 9'))
    assert published == [job_id]
    assert load_job(app, job_id).lost_runs == 1


def test_a_dead_pool_process_fails_a_job_that_must_not_run_twice(app):
    job_id = running(app, charge_card, (10,),
                     lease=utcnow() + lifecycle.LEASE)
    announce_lost_or_timed_out(sender=charge_card, task_id=job_id,
                               exception=WorkerLostError('signal 9'))
    assert load_job(app, job_id).state == 'FAILURE'


def test_the_hard_time_limit_is_a_failure_saying_so(app):
    job_id = running(app, lease=utcnow() + lifecycle.LEASE)
    announce_lost_or_timed_out(sender=tasks.add, task_id=job_id,
                               exception=TimeLimitExceeded(5))
    job = load_job(app, job_id)
    assert (job.state, job.error_type, job.lease_expires_at) == \
        ('FAILURE', 'billiard.exceptions.TimeLimitExceeded', None)


# -- results that cannot be stored -----------------------------------------

def calculations(app, operation):
    with transaction_of(app) as request:
        return request.dbsession.scalar(select(func.count()).where(
            Calculation.operation == operation))


def test_a_result_over_the_limit_fails_the_job_and_its_writes(app):
    job_id = big_result.apply_async((101,)).id
    result = big_result.apply((101,), task_id=job_id)
    assert isinstance(result.result, ResultTooLarge)
    job = load_job(app, job_id)
    assert (job.state, job.error_type) == \
        ('FAILURE', 'myapp.celery_integration.pyramid_task.ResultTooLarge')
    assert 'max_result_bytes=100' in job.error_message
    assert calculations(app, 'big') == 0
    big_result.apply((50,), task_id=big_result.apply_async((50,)).id)
    assert calculations(app, 'big') == 1


def test_a_result_json_cannot_carry_fails_the_job(app):
    huge = 10 ** 2200
    job_id = tasks.mul.apply_async((huge, huge)).id
    tasks.mul.apply((huge, huge), task_id=job_id)
    job = load_job(app, job_id)
    assert (job.state, job.error_type) == \
        ('FAILURE', 'kombu.exceptions.EncodeError')
    assert 'the result is not plain JSON' in job.error_message


def test_success_commits_with_the_tasks_writes_or_not_at_all(app):
    def fails_to_record(event):
        raise RuntimeError('the history could not be written')

    app.registry.registerHandler(fails_to_record, (TaskSucceeded,))
    try:
        job_id = tasks.record_sum.apply_async(([1, 2],)).id
        tasks.record_sum.apply(([1, 2],), task_id=job_id)
    finally:
        app.registry.unregisterHandler(fails_to_record, (TaskSucceeded,))
    assert load_job(app, job_id).state == 'FAILURE'
    assert calculations(app, 'sum') == 0
