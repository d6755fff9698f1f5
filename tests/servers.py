"""Private servers for fault tests: a Redis, a RabbitMQ node and a database
that never answers, each on a free localhost port, started by the test and
stopped by its pid.

The shared services on the standard ports are never touched: a test that
freezes (SIGSTOP), kills or restarts a broker does it to one of these.
"""
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid

import pytest

from .support import FAST_LANE, REQUIRE_SERVICES

RABBITMQ_SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server'


def free_port():
    """A localhost TCP port that nothing listens on (now)."""
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def listening(port, timeout=0.2):
    try:
        socket.create_connection(('127.0.0.1', port), timeout=timeout).close()
        return True
    except OSError:
        return False


def require_binary(path_or_name, what):
    """Skip (or, with MYAPP_REQUIRE_SERVICES=1, fail) without the binary."""
    if FAST_LANE:
        pytest.fail(f'this test starts {what}: mark it @pytest.mark.services',
                    pytrace=False)
    found = shutil.which(path_or_name)
    if found is None:
        message = f'{what} is not installed ({path_or_name} not found)'
        if REQUIRE_SERVICES:
            pytest.fail(f'{message} and MYAPP_REQUIRE_SERVICES=1')
        pytest.skip(message)
    return found


class Server:
    """A server process of our own: started, frozen, killed by its pid.

    The process leads a process group of its own (``start_new_session``),
    so that its children (RabbitMQ's Erlang helpers) go with it.
    """

    what = 'a server'
    boot_timeout = 30

    def __init__(self, directory, port=None):
        self.directory = str(directory)
        self.port = port or free_port()
        self.process = None
        self.log_path = os.path.join(self.directory,
                                     f'{type(self).__name__.lower()}.log')

    def command(self):
        raise NotImplementedError

    def environment(self):
        return None

    def start(self):
        assert self.process is None or self.process.poll() is not None
        os.makedirs(self.directory, exist_ok=True)
        self.log = open(self.log_path, 'a')
        self.process = subprocess.Popen(
            self.command(), stdout=self.log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=self.environment(),
            cwd=self.directory, start_new_session=True)
        deadline = time.monotonic() + self.boot_timeout
        while not self.ready():
            if self.process.poll() is not None:
                raise AssertionError(f'{self.what} exited with '
                                     f'{self.process.returncode}:\n'
                                     f'{self.output()}')
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f'{self.what} not up on port '
                                     f'{self.port} after {self.boot_timeout}s'
                                     f':\n{self.output()}')
            time.sleep(0.1)
        return self

    def ready(self):
        return listening(self.port)

    def output(self):
        with open(self.log_path, errors='replace') as handle:
            return handle.read()[-5000:]

    def _signal_group(self, sig):
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)

    def freeze(self):
        """SIGSTOP: connections stay open and new ones are accepted by the
        kernel, but nothing is ever answered."""
        self._signal_group(signal.SIGSTOP)

    def thaw(self):
        self._signal_group(signal.SIGCONT)

    def kill(self):
        """SIGKILL, as a crash or an OOM kill would."""
        self._signal_group(signal.SIGCONT)
        self._signal_group(signal.SIGKILL)
        self._reap()

    def stop(self, timeout=20):
        if self.process is None or self.process.poll() is not None:
            self._reap()
            return
        self._signal_group(signal.SIGCONT)
        self._signal_group(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
        self._reap()

    def _reap(self):
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)
            # Children of the group (RabbitMQ's helpers) go too.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
        if getattr(self, 'log', None) is not None:
            self.log.close()
            self.log = None

    def restart(self):
        """Kill the server and start it again on the same port."""
        self.kill()
        self.start()
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


class RedisServer(Server):
    """``redis-server`` on a free port, in memory only."""

    what = 'redis-server'

    def command(self):
        return [shutil.which('redis-server'), '--port', str(self.port),
                '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
                '--dir', self.directory, '--daemonize', 'no']

    def url(self, db=0):
        return f'redis://127.0.0.1:{self.port}/{db}'


class RabbitMQServer(Server):
    """A RabbitMQ node of its own (``myapptest-*@localhost``), with its
    own data, logs, Erlang cookie (HOME) and ports; no plugins.  It boots
    in about 6 s."""

    what = 'rabbitmq-server'
    boot_timeout = 60

    def __init__(self, directory, port=None):
        super().__init__(directory, port)
        self.node = f'myapptest-{uuid.uuid4().hex[:8]}@localhost'
        self.dist_port = free_port()

    def environment(self):
        plugins = os.path.join(self.directory, 'enabled_plugins')
        with open(plugins, 'w') as handle:
            handle.write('[].\n')
        return {
            **os.environ,
            'HOME': self.directory,  # its own .erlang.cookie
            'RABBITMQ_NODENAME': self.node,
            'RABBITMQ_NODE_IP_ADDRESS': '127.0.0.1',
            'RABBITMQ_NODE_PORT': str(self.port),
            'RABBITMQ_DIST_PORT': str(self.dist_port),
            'RABBITMQ_MNESIA_BASE': os.path.join(self.directory, 'mnesia'),
            'RABBITMQ_LOG_BASE': os.path.join(self.directory, 'log'),
            'RABBITMQ_ENABLED_PLUGINS_FILE': plugins,
            'RABBITMQ_CONFIG_FILE': os.path.join(self.directory, 'none'),
            'RABBITMQ_PID_FILE': os.path.join(self.directory, 'pid'),
        }

    def command(self):
        return [RABBITMQ_SERVER]

    def ready(self):
        if not listening(self.port):
            return False
        import kombu  # the port opens before the broker accepts logins
        connection = kombu.Connection(self.url(), connect_timeout=1)
        try:
            connection.connect()
            return True
        except Exception:
            return False
        finally:
            connection.release()

    def url(self):
        return f'amqp://guest:guest@127.0.0.1:{self.port}//'


class SilentListener:
    """A localhost port that accepts connections and never answers: a
    database (or broker) that hangs."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted = []
        self.closed = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.closed:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(connection)  # held open, never read

    def close(self):
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        for connection in self.accepted:
            connection.close()
        self.thread.join(5)
