"""The embedded broker never hands out, or loses, a half-written message."""
import os
import time
import uuid

import pytest
from kombu import Connection
from pyramid.paster import get_app

from myapp import tasks
from myapp.celery_integration import filesystem

from .support import RUN_QUEUE, Worker, write_ini


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
