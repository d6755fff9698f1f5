"""One beat per ini file, and no stale pidfile that blocks a restart.

Celery's pidfile is trusted while a process with the recorded pid exists; in
a container the restarted beat often gets the very same pid, and refuses to
start (seed 001).  Here the pidfile is only informative: the lock is an
``flock`` on it, which the kernel releases when the holder dies, however it
dies.  The lock is per machine.

A scheduler that coordinates several beats itself (myapp's database
scheduler, on a database server) says so with a ``needs_machine_lock(ini)``
class method returning False: its beats then run side by side, one sending.
"""
import fcntl
import os

from .ini import var_directory

_held = {}  # pidfile path -> open file descriptor, for this process's life


class BeatAlreadyRunning(Exception):
    pass


def needs_machine_lock(scheduler_cls, ini_path):
    """Must beats of ``ini_path`` with this scheduler class (or its
    ``module:Class`` name) be one per machine?  Yes, unless the class says
    otherwise (see module)."""
    if isinstance(scheduler_cls, str):
        from celery.utils.imports import symbol_by_name
        scheduler_cls = symbol_by_name(scheduler_cls)
    check = getattr(scheduler_cls, 'needs_machine_lock', None)
    return True if check is None else bool(check(ini_path))


def pidfile_path(ini_path):
    return os.path.join(var_directory(ini_path), 'celerybeat.pid')


def hold_beat_lock(ini_path):
    """Take the beat lock of ``ini_path`` for the rest of this process.

    Idempotent, and a forked child (``pceleryd --beat`` runs beat in one)
    inherits the parent's lock rather than competing with it.
    """
    path = pidfile_path(ini_path)
    if path in _held:
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 100).decode(errors='replace').strip() or '?'
        os.close(fd)
        raise BeatAlreadyRunning(
            f'another beat already runs for {ini_path} (pid {holder}, '
            f'see {path}); only one scheduler may run: stop it first') \
            from None
    os.ftruncate(fd, 0)
    os.write(fd, f'{os.getpid()}\n'.encode())
    _held[path] = fd
    return path
