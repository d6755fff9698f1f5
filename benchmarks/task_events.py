"""What task events cost: throughput with them off, on, and on and watched.

The evidence for README.rst's "Task events".  For the embedded default
(filesystem broker, SQLite results), for Redis (broker and results) and
for RabbitMQ with Redis results (``production.ini``'s pair), it
starts a real ``pceleryd INI --concurrency 2`` three ways:

* events off: ``worker_send_task_events = false``, ``task_send_sent_event =
  false`` (Celery's defaults);
* events on: both ``true``, no one listening;
* events on and watched: both ``true``, and a ``celery events --dump``
  consuming them (as seed 003's monitor or Flower would).

and from a separate process measures a burst of myapp's ``add``: how fast
``delay()`` sends (send tasks/s) and how fast the worker drains it, from the
first send until every result is in (drain tasks/s), medians of
:data:`ROUNDS` bursts of :data:`BURST` tasks; and the CPU time per task,
over all the bursts, of the sending process, of the worker (its main
process and pool processes) and of the monitor.  On a shared machine the
rates move with the load; the CPU times much less.

Run from the repository root (about 2 minutes; Redis, database 13, and
RabbitMQ on localhost, each left out when it does not answer)::

    .venv/bin/python -m benchmarks.task_events
"""
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.cpu import cpu_seconds, family  # noqa: E402
from tests.support import (BIN, Worker, run_command,  # noqa: E402
                           service_available, write_ini)

BURST = 300
ROUNDS = 5
RESULT_TIMEOUT = 60
BROKERS = {
    'filesystem': ('filesystem', 'sqlite'),
    'redis': ('redis://127.0.0.1:6379/13', 'redis://127.0.0.1:6379/13'),
    # production.ini's pair
    'rabbitmq': ('amqp://guest:guest@127.0.0.1:5672//',
                 'redis://127.0.0.1:6379/13'),
}
SERVICES = {'filesystem': (), 'redis': ('redis',),
            'rabbitmq': ('rabbitmq', 'redis')}
MODES = {
    'off': 'worker_send_task_events = false\ntask_send_sent_event = false',
    'on': 'worker_send_task_events = true\ntask_send_sent_event = true',
    'on, watched': 'worker_send_task_events = true\n'
                   'task_send_sent_event = true',
}


def measure(broker, mode):
    """One column: start the worker (and monitor), time the bursts in a
    process of their own (the app is configured once per process)."""
    with tempfile.TemporaryDirectory(prefix='myapp-bench-') as directory:
        url, backend = BROKERS[broker]
        ini = write_ini(directory, broker=url, backend=backend,
                        celery=MODES[mode])
        result = run_command('initialize_myapp_db', ini)
        assert result.returncode == 0, result.stderr
        monitor = None
        with Worker(ini, '--concurrency', '2') as worker:
            if mode == 'on, watched':
                monitor = subprocess.Popen(
                    [os.path.join(BIN, 'celery'), '-A',
                     'myapp.celery_integration', 'events', '--dump',
                     '--ini', ini],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(3)  # its queue bound
            processes = {'worker': family(worker.process.pid)}
            if monitor is not None:
                processes['monitor'] = [monitor.pid]
            before = {name: cpu_seconds(pids)
                      for name, pids in processes.items()}
            try:
                bursts = subprocess.run(
                    [sys.executable, '-m', 'benchmarks.task_events', ini],
                    cwd=ROOT, capture_output=True, text=True)
                used = {name: cpu_seconds(pids) - before[name]
                        for name, pids in processes.items()}
            finally:
                if monitor is not None:
                    monitor.terminate()
                    monitor.wait(20)
        if bursts.returncode:
            tail = bursts.stderr.strip().splitlines()[-1:]
            return {'error': tail[0] if tail else bursts.returncode}
        cells = json.loads(bursts.stdout.splitlines()[-1])
        tasks = (ROUNDS * BURST + 1)
        for name, seconds in used.items():
            cells[f'{name} CPU (ms/task)'] = seconds * 1000 / tasks
        return cells


def bursts(ini):
    """In a process of its own: the bursts on ``ini``'s app."""
    from pyramid.paster import get_app

    get_app(ini)
    from myapp.tasks import add

    add.delay(0, 0).get(timeout=RESULT_TIMEOUT, interval=0.01)  # warm up
    send, drain = [], []
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(ROUNDS):
        started = time.perf_counter()
        results = [add.delay(i, 1) for i in range(BURST)]
        sent = time.perf_counter()
        for result in results:
            result.get(timeout=RESULT_TIMEOUT, interval=0.01)
        done = time.perf_counter()
        send.append(BURST / (sent - started))
        drain.append(BURST / (done - started))
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    sender = (cpu_after.ru_utime - cpu_before.ru_utime
              + cpu_after.ru_stime - cpu_before.ru_stime)
    print(json.dumps({'send (tasks/s)': statistics.median(send),
                      'drain (tasks/s)': statistics.median(drain),
                      'sender CPU (ms/task)': sender * 1000
                      / (ROUNDS * BURST)}))


def main():
    started = time.monotonic()
    brokers = [broker for broker, services in SERVICES.items()
               if all(map(service_available, services))]
    rows = []
    for broker in brokers:
        for mode in MODES:
            rows.append((broker, mode, measure(broker, mode)))
    print(f'pceleryd --concurrency 2, {os.cpu_count()} CPUs; {ROUNDS} '
          f'bursts of {BURST} myapp.tasks.add')
    columns = ['send (tasks/s)', 'drain (tasks/s)', 'sender CPU (ms/task)',
               'worker CPU (ms/task)', 'monitor CPU (ms/task)']
    print(f'{"":12}{"task":12}' + ''.join(
        f'{name.split(" (")[0]:>13}' for name in columns))
    print(f'{"broker":12}{"events":12}' + ''.join(
        f'{name.split(" (")[1][:-1]:>13}' for name in columns))
    for broker, mode, cells in rows:
        print(f'{broker:12}{mode:12}' + (
            f'  error: {cells["error"]}' if 'error' in cells else ''.join(
                f'{cells[name]:13.{0 if "tasks/s" in name else 2}f}'
                if name in cells else f'{"-":>13}' for name in columns)))
    print(f'(whole run {time.monotonic() - started:.0f} s)')


if __name__ == '__main__':
    if len(sys.argv) > 1:
        bursts(sys.argv[1])
    else:
        main()
