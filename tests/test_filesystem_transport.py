"""The embedded broker never hands out, or loses, a half-written message,
and forgets the queues of consumers that are gone (event monitors)."""
import json
import os
import signal
import subprocess
import time
import uuid

import pytest
from celery import Celery
from kombu import Connection, Consumer, Exchange, Producer, Queue
from pyramid.paster import get_app

from myapp import tasks
from myapp.celery_integration import filesystem

from .support import BIN, RUN_QUEUE, Worker, write_ini


@pytest.fixture
def queue():
    """kombu remembers declared queues per process: a new name per test."""
    return f'jobs-{uuid.uuid4().hex[:8]}'


@pytest.fixture
def folder(tmp_path):
    path = tmp_path / 'queue'
    path.mkdir()
    return path


@pytest.fixture
def options(folder, tmp_path):
    return {'data_folder_in': str(folder), 'data_folder_out': str(folder),
            'control_folder': str(tmp_path / 'control')}


@pytest.fixture
def connection(options):
    with Connection('filesystem://', transport_options=options,
                    transport=f'{filesystem.__name__}:Transport') as conn:
        yield conn


def get(connection, queue):
    message = connection.SimpleQueue(queue).get(block=False)
    message.ack()
    return message.payload


def queued_files(folder, queue):
    return sorted(name for name in os.listdir(folder)
                  if name.endswith(f'.{queue}.msg'))


def write_half(folder, queue, content=b''):
    """A message file as plain kombu leaves it while still writing."""
    path = folder / f'{int(time.monotonic() * 1000) - 5}_x.{queue}.msg'
    path.write_bytes(content)
    return path


def test_messages_go_through(connection, folder, queue):
    connection.SimpleQueue(queue).put({'n': 1})
    assert [name for name in os.listdir(folder)
            if not name.endswith('.msg')] == []  # no partial file left
    assert get(connection, queue) == {'n': 1}


def test_a_half_written_message_is_skipped_and_kept(connection, folder,
                                                    queue):
    half = write_half(folder, queue, b'{"body": "eyJ')
    connection.SimpleQueue(queue).put({'n': 2})
    assert get(connection, queue) == {'n': 2}  # the next one, no error
    assert half.exists()  # put back, not lost


def test_an_empty_message_file_does_not_stop_the_consumer(connection,
                                                          folder, queue):
    write_half(folder, queue)
    with pytest.raises(connection.SimpleQueue(queue).Empty):
        connection.SimpleQueue(queue).get(block=False)
    assert len(queued_files(folder, queue)) == 1


def test_a_message_finished_later_is_delivered(connection, folder, options,
                                               queue):
    with Connection('filesystem://', transport_options=options) as plain:
        plain.SimpleQueue(queue).put({'n': 3})  # plain kombu
    whole = (folder / queued_files(folder, queue)[0]).read_bytes()
    half = write_half(folder, queue)
    assert get(connection, queue) == {'n': 3}
    half.write_bytes(whole)  # the writer finishes
    assert get(connection, queue) == {'n': 3}


def test_a_file_unreadable_for_long_is_set_aside(connection, folder, queue,
                                                 caplog):
    broken = write_half(folder, queue, b'not json')
    old = time.time() - filesystem.UNREADABLE_AFTER - 1
    os.utime(broken, (old, old))
    with pytest.raises(connection.SimpleQueue(queue).Empty):
        connection.SimpleQueue(queue).get(block=False)
    assert queued_files(folder, queue) == []
    assert (folder / f'{broken.name}.unreadable').read_bytes() == b'not json'
    assert 'does not decode' in caplog.text


@pytest.mark.worker
def test_a_worker_carries_on_past_an_empty_message_file(tmp_path,
                                                        initialize_db):
    """Issue 12's reproduction: an empty message file in the queue folder
    while ``pceleryd development.ini`` runs used to make it exit."""
    ini = write_ini(tmp_path)
    initialize_db(ini)
    get_app(ini)
    with Worker(ini) as worker:
        empty = write_half(tmp_path / 'var' / 'broker' / 'queue', RUN_QUEUE)
        assert tasks.add.delay(2, 3).get(timeout=20) == 5
        assert worker.process.poll() is None
        assert empty.exists()


# -- queues that expire -------------------------------------------------------

EVENTS = Exchange('events', type='topic')


def expiring(name, expires=60, ttl=5):
    """A queue declared as Celery's event receiver declares its own."""
    return Queue(name, EVENTS, routing_key='#', auto_delete=True,
                 durable=False, expires=expires, message_ttl=ttl)


def publish(connection, body=None, exchange=EVENTS):
    Producer(connection.default_channel).publish(
        body or {'type': 'worker-heartbeat'}, exchange=exchange,
        routing_key='worker.heartbeat', declare=[exchange])


def bound(control, exchange='events'):
    path = control / f'{exchange}.exchange'
    return [queue for _, _, queue in json.loads(path.read_text())] \
        if path.exists() else []


def age(path, seconds):
    then = time.time() - seconds
    os.utime(path, (then, then))


@pytest.fixture
def control(tmp_path):
    return tmp_path / 'control'


@pytest.fixture
def other_connection(options):
    """Another client of the same folders (another process, as far as the
    files go)."""
    with Connection('filesystem://', transport_options=options,
                    transport=f'{filesystem.__name__}:Transport') as conn:
        yield conn


def test_a_queue_declared_with_an_expiry_records_it(connection, control,
                                                    queue):
    expiring(queue, expires=60, ttl=5)(connection.default_channel).declare()
    marker = json.loads((control / f'{queue}.queue').read_text())
    assert marker == {'expires': 60.0, 'message_ttl': 5.0}
    assert bound(control) == [queue]


def test_celerys_event_receiver_declares_an_expiring_queue(options, control):
    app = Celery(broker='filesystem://', set_as_current=False)
    app.conf.update(broker_transport=f'{filesystem.__name__}:Transport',
                    broker_transport_options=options,
                    event_queue_expires=7.5)
    with app.connection_for_read() as connection:
        receiver = app.events.Receiver(connection, handlers={})
        receiver.queue(connection.default_channel).declare()
        name = receiver.queue.name
        assert json.loads((control / f'{name}.queue').read_text()) == \
            {'expires': 7.5, 'message_ttl': 5.0}
        assert bound(control, 'celeryev') == [name]


def test_a_queue_unused_past_its_expiry_goes_at_the_next_publish(
        connection, other_connection, folder, control, queue):
    tasks_queue = Queue(f'{queue}-tasks', EVENTS, routing_key='#')
    channel = connection.default_channel
    tasks_queue(channel).declare()
    expiring(queue)(channel).declare()
    publish(other_connection)
    assert len(queued_files(folder, queue)) == 1
    age(control / f'{queue}.queue', 61)  # no one polled it for 61 s
    publish(other_connection)
    assert bound(control) == [f'{queue}-tasks']  # never expires
    assert queued_files(folder, queue) == []
    assert not (control / f'{queue}.queue').exists()
    assert len(queued_files(folder, f'{queue}-tasks')) == 2


def test_a_queue_polled_by_its_consumer_does_not_expire(
        connection, other_connection, folder, control, queue, monkeypatch):
    monkeypatch.setattr(filesystem, 'KEEPALIVE_INTERVAL', 0)
    received = []
    with Consumer(connection, [expiring(queue)],
                  callbacks=[lambda body, message: received.append(body)],
                  no_ack=True):
        age(control / f'{queue}.queue', 61)
        with pytest.raises(TimeoutError):
            connection.drain_events(timeout=0.1)  # polls: alive
        publish(other_connection, {'n': 1})
        connection.drain_events(timeout=2)
    assert received == [{'n': 1}]


def test_a_consumer_back_after_its_queue_expired_declares_it_again(
        connection, other_connection, control, queue, monkeypatch, caplog):
    """E.g. a monitor suspended for longer than the expiry, resumed."""
    monkeypatch.setattr(filesystem, 'KEEPALIVE_INTERVAL', 0)
    received = []
    with Consumer(connection, [expiring(queue)],
                  callbacks=[lambda body, message: received.append(body)],
                  no_ack=True):
        age(control / f'{queue}.queue', 61)
        publish(other_connection)  # drops it
        assert bound(control) == []
        with pytest.raises(TimeoutError):
            connection.drain_events(timeout=0.1)
        assert bound(control) == [queue]
        assert (control / f'{queue}.queue').exists()
        publish(other_connection, {'n': 2})
        connection.drain_events(timeout=2)
    assert received == [{'n': 2}]
    assert 'declared again' in caplog.text


def test_messages_older_than_the_queues_ttl_are_dropped_unread(
        connection, other_connection, folder, queue):
    expiring(queue, ttl=1)(connection.default_channel).declare()
    publish(other_connection, {'n': 'old'})
    old = queued_files(folder, queue)[0]
    written = int(old.partition('_')[0])
    os.rename(folder / old, folder / f'{written - 1500}_{old.partition("_")[2]}')
    publish(other_connection, {'n': 'new'})
    simple = connection.SimpleQueue(expiring(queue, ttl=1))
    assert simple.get(block=False).payload == {'n': 'new'}
    assert queued_files(folder, queue) == []


def test_closing_its_consumer_deletes_an_auto_delete_queue(
        options, other_connection, folder, control, queue):
    with Connection('filesystem://', transport_options=options,
                    transport=f'{filesystem.__name__}:Transport') as conn:
        consumer = Consumer(conn, [expiring(queue)], no_ack=True)
        consumer.consume()
        publish(other_connection)
        assert len(queued_files(folder, queue)) == 1
    assert bound(control) == []
    assert queued_files(folder, queue) == []
    assert not (control / f'{queue}.queue').exists()


def test_an_auto_delete_queue_no_one_consumed_outlives_its_producer(
        options, folder, control, queue):
    with Connection('filesystem://', transport_options=options,
                    transport=f'{filesystem.__name__}:Transport') as conn:
        expiring(queue)(conn.default_channel).declare()
        publish(conn)
    assert bound(control) == [queue]
    assert len(queued_files(folder, queue)) == 1


def event_queues(control):
    return {name[:-len('.queue')] for name in os.listdir(control)
            if name.startswith('celeryev.') and name.endswith('.queue')}


def start_events_dump(ini, control, started):
    """Start ``celery events --dump`` on ``ini`` (appended to ``started``);
    return it and its queue, once declared."""
    known = event_queues(control)
    process = subprocess.Popen(
        [os.path.join(BIN, 'celery'), '-A', 'myapp.celery_integration',
         'events', '--dump', '--ini', ini],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started.append(process)
    deadline = time.monotonic() + 30
    while not event_queues(control) - known:
        assert process.poll() is None, 'celery events --dump exited'
        assert time.monotonic() < deadline, 'no event queue declared'
        time.sleep(0.1)
    return process, (event_queues(control) - known).pop()


def threads_state(pid):
    """Each thread's state and kernel wait channel, from /proc."""
    states = []
    for task in sorted(os.listdir(f'/proc/{pid}/task')):
        with open(f'/proc/{pid}/task/{task}/stat') as stat:
            state = stat.read().rpartition(')')[2].split()[0]
        with open(f'/proc/{pid}/task/{task}/wchan') as wchan:
            states.append(f'{task}: {state} {wchan.read() or "-"}')
    return '; '.join(states)


def wait_until(condition, timeout):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f'not so after {timeout}s'
        time.sleep(0.2)


@pytest.mark.worker
def test_the_queue_of_an_event_monitor_goes_when_the_monitor_does(
        tmp_path, initialize_db):
    """Issue: every ``celery events`` or Flower session left a queue that
    the worker fed forever.  One stopped with Ctrl-C leaves nothing; one
    killed leaves a queue that expires (event_queue_expires, here 4 s)."""
    ini = write_ini(tmp_path, celery='event_queue_expires = 4')
    initialize_db(ini)
    broker = tmp_path / 'var' / 'broker'
    control, folder = broker / 'control', broker / 'queue'
    monitors = []
    with Worker(ini):
        try:
            killed, dead_queue = start_events_dump(ini, control, monitors)
            stopped, queue = start_events_dump(ini, control, monitors)
            killed.kill()
            killed.wait(10)
            stopped.send_signal(signal.SIGINT)
            # A miss says where the monitor was (it was SIGINT ignored by
            # a suite started from a background shell: see conftest).
            try:
                assert stopped.wait(20) == 0
            except subprocess.TimeoutExpired:
                raise AssertionError('celery events --dump still running '
                                     '20 s after Ctrl-C: '
                                     f'{threads_state(stopped.pid)}') \
                    from None
        finally:
            for monitor in monitors:
                if monitor.poll() is None:
                    monitor.kill()
                    monitor.wait(10)
        assert queue not in bound(control, 'celeryev')
        assert not (control / f'{queue}.queue').exists()

        # The worker's heartbeats (every 2 s) go to the dead queue...
        wait_until(lambda: queued_files(folder, dead_queue), 10)
        assert dead_queue in bound(control, 'celeryev')
        # ...until it expires: then its binding, marker and files go, in
        # that order (the test waits for all three: it saw the binding
        # gone once before the same worker had deleted the files).
        wait_until(lambda: dead_queue not in bound(control, 'celeryev')
                   and not (control / f'{dead_queue}.queue').exists()
                   and not queued_files(folder, dead_queue), 15)
        assert queued_files(folder, queue) == []


# -- a message read is kept until it is acknowledged --------------------------

def claimed_files(folder):
    claims = folder / filesystem.CLAIMS
    return sorted(str(path.relative_to(claims))
                  for path in claims.glob('*/*')) if claims.exists() else []


def test_a_message_read_stays_claimed_until_acknowledged(connection, folder,
                                                         queue):
    connection.SimpleQueue(queue).put({'n': 1})
    message = connection.SimpleQueue(queue).get(block=False)
    claimed, = claimed_files(folder)
    assert claimed.startswith(f'{os.getpid()}-')
    assert queued_files(folder, queue) == []
    message.ack()
    assert claimed_files(folder) == []


def test_a_requeued_message_goes_back_to_the_queue(connection, folder, queue):
    connection.SimpleQueue(queue).put({'n': 1})
    connection.SimpleQueue(queue).get(block=False).requeue()
    assert claimed_files(folder) == []
    assert get(connection, queue) == {'n': 1}


def test_broadcasts_read_without_acknowledgement_leave_no_claim(
        connection, folder, queue):
    received = []
    connection.SimpleQueue(queue).put({'n': 1})
    with Consumer(connection.default_channel, [Queue(queue)], no_ack=True,
                  callbacks=[lambda body, message: received.append(body)]):
        connection.drain_events(timeout=2)
    assert received == [{'n': 1}]
    assert claimed_files(folder) == [] and queued_files(folder, queue) == []


READ_AND_DIE = """
import os, sys, time
from kombu import Connection
from myapp.celery_integration import filesystem
options = dict(data_folder_in=sys.argv[1], data_folder_out=sys.argv[1],
               control_folder=sys.argv[2])
with Connection('filesystem://', transport_options=options,
                transport=f'{filesystem.__name__}:Transport') as connection:
    queue = connection.SimpleQueue(sys.argv[3])
    queue.get(timeout=10)
    queue.get(timeout=10)
    print('read', flush=True)
    time.sleep(60)
"""


@pytest.mark.worker
def test_messages_read_by_a_process_killed_are_delivered_again(
        connection, folder, queue, tmp_path):
    for n in range(3):
        connection.SimpleQueue(queue).put({'n': n})
    reader = subprocess.Popen(
        [os.path.join(BIN, 'python'), '-c', READ_AND_DIE, str(folder),
         str(tmp_path / 'control'), queue], stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline() == 'read\n'
        assert len(claimed_files(folder)) == 2
        # Its claims are alive: only the third message is left here.
        left = get(connection, queue)
        assert queued_files(folder, queue) == []
    finally:
        reader.send_signal(signal.SIGKILL)
        reader.wait()
    # The next consumer to open a channel (or poll) finds them again.
    with Connection('filesystem://', transport_options=connection.
                    transport_options, transport=f'{filesystem.__name__}:'
                    'Transport') as other:
        with Consumer(other.default_channel, [Queue(queue)]) as consumer:
            received = []
            consumer.register_callback(
                lambda body, message: (received.append(body),
                                       message.ack()))
            while len(received) < 2:
                other.drain_events(timeout=5)
    # Two messages written in the same millisecond may be read in either
    # order (as on kombu's own transport): compare the sets.
    assert sorted(body['n'] for body in [*received, left]) == [0, 1, 2]
    assert claimed_files(folder) == []


# -- the worker's event loop ---------------------------------------------------

class FakeLoop:
    """What the transport asks of kombu's Hub."""

    def __init__(self):
        self.soon, self.repeated = [], []

    def call_soon(self, callback, *args):
        self.soon.append((callback, args))

    def call_repeatedly(self, seconds, callback, *args):
        self.repeated.append((seconds, callback, args))
        return Timer()


class Timer:
    cancelled = False

    def cancel(self):
        self.cancelled = True


def test_the_transport_joins_the_workers_event_loop(connection, queue):
    # So that a worker on it runs Celery's AsynPool (pipes per pool
    # process), not the threaded pool with its shared locks.
    assert connection.transport.implements.asynchronous
    loop = FakeLoop()
    transport = connection.transport
    transport.register_with_event_loop(connection.connection, loop)
    (seconds, deliver, args), = loop.repeated
    assert seconds == transport.polling_interval
    received = []
    consumer_queue = Queue(queue, Exchange(queue), queue)
    with Consumer(connection, [consumer_queue], accept=['json'],
                  callbacks=[lambda body, message: received.append(
                      (body, message))]):
        Producer(connection).publish({'n': 1}, exchange=queue,
                                     routing_key=queue,
                                     declare=[consumer_queue])
        deliver(*args)
        assert [body for body, _ in received] == [{'n': 1}]
        # A settled message has the next ones delivered at the loop's next
        # turn (not at the next poll), once however many are settled.
        received[0][1].ack()
        assert len(loop.soon) == 1
        for n in (2, 3):
            Producer(connection).publish({'n': n}, exchange=queue,
                                         routing_key=queue)
        callback, args = loop.soon.pop()
        callback(*args)
        # (two files written in one millisecond come in either order)
        assert sorted(body['n'] for body, _ in received) == [1, 2, 3]
        received[1][1].ack()
        received[2][1].ack()
        assert len(loop.soon) == 1
    transport.close_connection(connection.connection)
    assert transport._loop is None


def test_one_senders_messages_arrive_in_the_order_sent(connection, queue):
    """Many within one millisecond: a monitor must see a worker's
    task-received before its task-started."""
    producer = connection.SimpleQueue(queue)
    for n in range(200):
        producer.put({'n': n})
    assert [get(connection, queue)['n'] for _ in range(200)] == \
        list(range(200))
