"""Celery's task events are on in the shipped inis: seed 003's monitor (as
README.rst shows it) and ``celery events --dump`` see a worker's tasks."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from pyramid.paster import get_app

from myapp import tasks
from myapp.celery_integration.settings import load_celery_settings

from .support import BIN, PROJECT, Worker


def readme_monitor():
    """The script under "``monitor.py``, seed 003's monitor" in README.rst."""
    with open(os.path.join(PROJECT, 'README.rst')) as handle:
        text = handle.read()
    block = text.split("``monitor.py``, seed 003's monitor on myapp's "
                       "ini::\n", 1)[1]
    lines = []
    for line in block.splitlines()[1:]:
        if line and not line.startswith('    '):
            break
        lines.append(line[4:])
    return '\n'.join(lines).strip() + '\n'


@pytest.mark.parametrize('ini', ['development.ini', 'production.ini'])
def test_the_shipped_inis_turn_task_events_on(ini):
    settings = load_celery_settings(os.path.join(PROJECT, ini), environ={})
    assert settings['worker_send_task_events'] is True
    assert settings['task_send_sent_event'] is True


def start(argv, log):
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL,
                            env=dict(os.environ, PYTHONUNBUFFERED='1'))


def celeryev_bindings(control):
    path = control / 'celeryev.exchange'
    return len(json.loads(path.read_text())) if path.exists() else 0


def wait_for(path, texts, timeout=30):
    deadline = time.monotonic() + timeout
    while not all(text in path.read_text() for text in texts):
        assert time.monotonic() < deadline, \
            f'{texts} not all in {path.name} after {timeout}s:\n' \
            f'{path.read_text()}'
        time.sleep(0.2)


@pytest.mark.worker
def test_the_readme_monitor_and_events_dump_see_a_workers_tasks(
        tmp_path, initialize_db):
    """development.ini as shipped, in a directory of its own; seed 003's
    monitor from README.rst and ``celery events --dump`` beside its
    worker."""
    ini = str(tmp_path / 'development.ini')
    shutil.copy(os.path.join(PROJECT, 'development.ini'), ini)
    initialize_db(ini)
    get_app(ini)
    (tmp_path / 'monitor.py').write_text(readme_monitor())
    control = tmp_path / 'var' / 'broker' / 'control'
    monitor_log, dump_log = tmp_path / 'monitor.log', tmp_path / 'dump.log'
    watchers = []
    with Worker(ini) as worker, open(monitor_log, 'w') as monitor_out, \
            open(dump_log, 'w') as dump_out:
        assert 'task events: ON' in worker.output()
        try:
            watchers.append(start(
                [sys.executable, str(tmp_path / 'monitor.py'), ini],
                monitor_out))
            watchers.append(start(
                [os.path.join(BIN, 'celery'), '-A',
                 'myapp.celery_integration', 'events', '--dump', '--ini',
                 ini], dump_out))
            deadline = time.monotonic() + 30
            while celeryev_bindings(control) < 2:  # both listening
                assert all(w.poll() is None for w in watchers), \
                    monitor_log.read_text() + dump_log.read_text()
                assert time.monotonic() < deadline
                time.sleep(0.1)

            result = tasks.add.delay(5, 10)
            assert result.get(timeout=20) == 15
            wait_for(monitor_log, [
                f'Status: RECEIVED[myapp.tasks.add] {result.id} ',
                f'Status: STARTED[myapp.tasks.add] {result.id} ',
                f'Status: SUCCESS[myapp.tasks.add] {result.id} '])
            wait_for(dump_log, [
                f'task {step}: myapp.tasks.add({result.id})'
                for step in ('sent', 'received', 'started', 'succeeded')])
            assert 'result=15' in dump_log.read_text()
        finally:
            for watcher in watchers:
                watcher.send_signal(signal.SIGINT)
            for watcher in watchers:
                try:
                    watcher.wait(20)
                except subprocess.TimeoutExpired:
                    watcher.kill()
                    watcher.wait(10)
