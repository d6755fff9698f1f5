"""Workers and queues as the API and the page show them."""
from ..jobs.presentation import format_time
from .roster import ONLINE


def worker_json(worker, status):
    return {
        'hostname': worker.hostname,
        'status': status,
        'pid': worker.pid,
        'pool': worker.pool,
        'concurrency': worker.concurrency,
        'queues': worker.queues,
        # What it ran at its last heartbeat: nothing, once it is not online.
        'active': worker.active if status == ONLINE else [],
        'processed': worker.processed,
        'software': worker.software,
        'started_at': format_time(worker.started_at),
        'last_heartbeat': format_time(worker.heartbeat_at),
        'stopped_at': format_time(worker.stopped_at),
    }


def queues_json(depths, seen):
    """Each queue's waiting messages, and the online workers consuming it
    (none: its messages wait until one starts)."""
    return [{'name': name, 'messages': messages,
             'workers': sorted(worker.hostname for worker, status in seen
                               if status == ONLINE and name in worker.queues)}
            for name, messages in depths.items()]
