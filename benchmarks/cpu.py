"""The CPU time of processes, from Linux's /proc: what the benchmarks
count per task besides their rates."""
import os


def family(pid):
    """``pid`` and its child processes (a worker's pool)."""
    pids = [pid]
    for thread in os.listdir(f'/proc/{pid}/task'):
        with open(f'/proc/{pid}/task/{thread}/children') as handle:
            pids += [int(child) for child in handle.read().split()]
    return pids


def named(command):
    """The processes whose command name (``/proc/PID/comm``) is
    ``command``: a server's, e.g. ``postgres``."""
    pids = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/comm') as handle:
                if handle.read().strip() == command:
                    pids.append(int(entry))
        except OSError:   # it ended meanwhile
            continue
    return pids


def cpu_by_pid(pids):
    """{pid: user and system CPU seconds}, of those still running."""
    tick = os.sysconf('SC_CLK_TCK')
    seconds = {}
    for pid in pids:
        try:
            with open(f'/proc/{pid}/stat') as handle:
                # "pid (comm) state ...": comm may hold spaces.
                fields = handle.read().rpartition(')')[2].split()
        except OSError:
            continue
        seconds[pid] = (int(fields[11]) + int(fields[12])) / tick
    return seconds


def cpu_seconds(pids):
    """User and system CPU time of ``pids``, together."""
    return sum(cpu_by_pid(pids).values())
