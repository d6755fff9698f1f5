"""Lost messages: a job sent long ago, never started, whose queue is empty,
is sent again (myapp.jobs.lost_messages).

In-process on the embedded broker; a worker meeting a message really lost
on each broker is in tests/test_jobs_faults.py.
"""
import datetime

import pytest
from pyramid import testing

from myapp import tasks
from myapp.celery_integration import ConfigError, celery_app
from myapp.jobs import lost_messages
from myapp.jobs.tasks import send_unsent
from myapp.models.types import utcnow

from .jobs_support import load_job, set_state



def long_ago(app):
    """Longer ago than the app's jobs.resend_unstarted_after."""
    return utcnow() - lost_messages.resend_after(app.registry) - \
        datetime.timedelta(minutes=1)


def purge():
    """Lose every message of the default queue, as a broker can."""
    with celery_app.connection_for_write() as connection:
        connection.default_channel.queue_purge(
            celery_app.conf.task_default_queue)


def sent_long_ago(app, **columns):
    job_id = tasks.add.apply_async((1, 2)).id
    when = long_ago(app)
    set_state(app, job_id, 'PENDING', created_at=when, sent_at=when,
              **columns)
    return job_id


def sweep():
    return send_unsent.apply().get()


def test_a_job_whose_message_was_lost_is_sent_again(app, published):
    purge()
    job_id = sent_long_ago(app)
    purge()
    published.clear()
    assert sweep() == 1
    assert published == [job_id]
    job = load_job(app, job_id)
    assert (job.state, job.lost_runs) == ('PENDING', 1)
    assert job.sent_at > utcnow() - datetime.timedelta(minutes=1)
    assert not lost_messages.queue_is_empty(
        celery_app.conf.task_default_queue)
    tasks.add.apply((1, 2), task_id=job_id)  # the new message runs it
    assert load_job(app, job_id).state == 'SUCCESS'


def test_a_job_in_a_queue_that_holds_messages_is_not_sent_twice(
        app, published):
    # Its message may be waiting behind others: only an empty queue says
    # that it is lost.
    purge()
    job_id = sent_long_ago(app)
    published.clear()
    assert sweep() == 0
    assert published == []
    assert load_job(app, job_id).lost_runs == 0


def test_a_job_sent_recently_is_left_to_its_message(app, published):
    job_id = tasks.add.apply_async((1, 2)).id
    purge()
    published.clear()
    assert sweep() == 0
    assert load_job(app, job_id).sent_at is not None
    assert published == []


def test_a_job_lost_three_times_fails_saying_so(app, published):
    purge()
    job_id = sent_long_ago(app, lost_runs=2)
    purge()
    published.clear()
    assert sweep() == 0
    job = load_job(app, job_id)
    assert (job.state, job.lost_runs, job.error_type) == \
        ('FAILURE', 3, 'billiard.exceptions.WorkerLostError')
    assert 'lost before any run' in job.error_message
    assert 'lost 3 times' in job.error_message
    assert published == []


def test_a_queue_routed_elsewhere_is_the_one_counted(app, published):
    # The job's own queue is empty; the default queue holds a message.
    purge()
    tasks.add.apply_async((5, 5))
    job_id = sent_long_ago(app)
    set_state(app, job_id, 'PENDING', options={'queue': 'elsewhere'})
    published.clear()
    assert sweep() == 1
    assert published == [job_id]
    purge()


def test_the_setting_is_read_and_checked():
    config = testing.setUp(settings={
        'jobs.resend_unstarted_after': '60', '__file__': 'app.ini'})
    try:
        lost_messages.configure(config)
        assert lost_messages.resend_after(config.registry) == \
            datetime.timedelta(seconds=60)
        config.registry.settings['jobs.resend_unstarted_after'] = '1'
        with pytest.raises(ConfigError) as raised:
            lost_messages.configure(config)
    finally:
        testing.tearDown()
    message = str(raised.value)
    assert 'app.ini' in message
    assert 'jobs.resend_unstarted_after' in message
    assert 'at least 5' in message
