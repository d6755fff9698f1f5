"""kombu's filesystem transport: no half-written messages, no dead queues.

The embedded default's broker is a folder of message files.  kombu's writer
creates each file in the queue folder and then fills it, under an ``flock``
that kombu's reader never takes; a reader polling at that moment takes an
empty or partial file, fails to decode it, and the worker exits with the
message lost.  Here:

* a message is written under a name no reader looks at, then renamed into
  the queue: a reader sees all of it or nothing;
* a reader that still meets a file it cannot decode (one that plain kombu,
  e.g. a ``celery call`` without this app's settings, is still writing)
  puts it back for a later poll, and only sets it aside, with an error in
  the log, once it has stayed unreadable for :data:`UNREADABLE_AFTER`
  seconds.  No message is deleted for being unreadable.

kombu's transport also ignores the queue arguments that make RabbitMQ (and
kombu's Redis transport) forget a client's queue: every ``celery events``,
Flower or monitor session binds a ``celeryev.UUID`` queue that outlives it,
and the worker writes every heartbeat and task event into each dead queue
forever (thousands of files in an hour; each poll of the worker lists them
all).  Here queues expire as on RabbitMQ:

* a queue declared with ``expires`` (``x-expires``: Celery's event queues,
  ``event_queue_expires``, 60 s; pidbox queues, ``control_queue_expires``,
  10 s) gets a marker ``CONTROL/QUEUE.queue`` holding its expiry and
  message TTL;
* a process consuming it marks it alive by touching the marker's mtime, at
  most once a second (:data:`KEEPALIVE_INTERVAL`), while it polls; one
  whose queue was expired meanwhile (suspended for longer than the expiry)
  declares and binds it again;
* a publisher routing to it (``get_table``: fanout, topic and direct alike;
  one ``stat`` per binding and message) drops a queue not marked alive for
  longer than its expiry: its bindings in every exchange, its message
  files, its marker;
* a consumer drops, unread, messages older than the queue's message TTL
  (``x-message-ttl``: ``event_queue_ttl``, 5 s);
* a channel closed cleanly deletes the ``auto_delete`` queues it declared
  and consumed (RabbitMQ deletes them when their consumer goes, kombu's
  Redis transport when the channel closes), so a ``celery events`` session
  that exits leaves nothing behind; expiry covers the ones that are killed.

Queues declared without ``expires`` (the task queues) never expire.

kombu's reader also deletes a message file as it reads it, so a worker
killed (or a machine stopped) with messages read but not acknowledged
loses them: its prefetched tasks, and the one it was running.  Here a
message that needs an acknowledgement stays on disk until it gets one:

* reading it moves it into this process's claims folder,
  ``QUEUE_FOLDER/.claims/PID-START`` (START tells a reused pid apart);
* its acknowledgement deletes it (or moves it to ``processed_folder``);
  a requeue or a clean shutdown puts the message back in the queue;
* any consumer, when it opens a channel and every
  :data:`RECLAIM_INTERVAL` seconds while it polls, moves the claims of
  processes that no longer run back into the queue, where they are
  delivered again.

Messages read without acknowledgement (broadcasts, events) are deleted as
they are read, as before.

kombu's transport cannot join a worker's event loop either, so a worker on
it ran Celery's threaded pool, whose pool processes share one result queue
under one lock.  A pool process killed while it held that lock (the hard
time limit kills with SIGTERM, then SIGKILL 0.1 s later, and a process with
a thread of its own, as a run's lease keeper, is often still writing its
goodbye by then) left the lock held: the next pool process waited on it
forever, and the worker never ran another job.  Here the transport joins
the event loop (polling its folders every ``polling_interval`` from the
loop's timer), so the worker runs Celery's ``AsynPool``, as on Redis and
RabbitMQ: each pool process has pipes of its own, and one that dies takes
only them with it.

Used for every ``filesystem://`` broker through Celery's
``broker_transport`` setting (see :mod:`.settings`).
"""
import logging
import os
import re
import shutil
import socket
import tempfile
import time
import uuid
from itertools import count

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.transport.base import to_rabbitmq_queue_arguments
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

log = logging.getLogger(__name__)

#: A file this old that still does not decode is not being written: it is
#: broken, and set aside as ``NAME.unreadable`` beside the queue.
UNREADABLE_AFTER = 60
PARTIAL_PREFIX = 'writing-'
#: A consumer marks a queue it polls alive at most this often (seconds),
#: and at least four times per expiry.
KEEPALIVE_INTERVAL = 1.0
#: Queue names that can name a marker file (others never expire).
QUEUE_NAME = re.compile(r'\A[A-Za-z0-9@._-]+\Z')
MARKER_SUFFIX = '.queue'
CLAIMS = '.claims'
#: How often (seconds) a polling consumer looks for dead processes' claims.
RECLAIM_INTERVAL = 5.0
#: Orders the messages one process writes within one millisecond.
WRITE_SEQUENCE = count()


def queue_expiry(arguments):
    """``(expires, message_ttl)`` in seconds from RabbitMQ-style queue
    arguments, or None for a queue that does not expire."""
    arguments = arguments or {}
    expires = arguments.get('x-expires')
    if not expires:
        return None
    ttl = arguments.get('x-message-ttl')
    return expires / 1000, (ttl / 1000 if ttl else None)


class Channel(filesystem.Channel):

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._auto_delete_queues = set()  # declared so on this channel
        self._consumed_auto_delete = set()  # ...and consumed on it
        self._kept_alive_at = {}  # queue: time.monotonic() of the touch
        self._expiring_at_lookup = set()
        self._no_ack_queues = set()  # consumed without acknowledgements
        self._claims = {}  # delivery tag: its file in the claims folder
        self._claims_folder = os.path.join(self.data_folder_in, CLAIMS,
                                           process_identity())
        self._reclaimed_at = 0.0

    def _put(self, queue, payload, **kwargs):
        """Write the message beside the queue, then rename it into it."""
        # Consumers take files in name order: the time in ms (as plain
        # kombu names them), then this process's sequence (a uuid alone
        # shuffled one sender's messages within a millisecond: a worker's
        # task-received after its task-started), then a uuid to tell
        # writers apart.
        name = f'{int(round(time.monotonic() * 1000))}_' \
               f'{next(WRITE_SEQUENCE):012d}-{uuid.uuid4()}.{queue}.msg'
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out,
                               f'{PARTIAL_PREFIX}{uuid.uuid4()}.part')
        try:
            with open(partial, 'wb') as handle:
                handle.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f'Cannot add file {final!r} to the queue '
                               f'folder: {exc}') from exc
        if queue in self._expiring_at_lookup and \
                not os.path.exists(self._marker(queue)):
            # Deleted since the lookup: whoever deleted it removed the
            # marker before its messages, so this one would stay forever.
            remove(final)

    def _get(self, queue):
        """The oldest message of ``queue`` that can be read whole."""
        wanted = f'{queue}.msg'
        expiry = self.connection.expiring_queues.get(queue)
        oldest = (time.monotonic() - expiry[1]) * 1000 \
            if expiry and expiry[1] else None
        for name in sorted(os.listdir(self.data_folder_in)):
            if name.partition('.')[2] == wanted:
                if oldest is not None and written_before(name, oldest):
                    self._discard(name)  # older than the queue's TTL
                    continue
                message = self._take(name)
                if message is not None:
                    return message
        raise filesystem.Empty()

    def _take(self, name):
        """Move the file out of the queue and decode it; None if another
        consumer took it first or it is not whole yet (then it goes back).
        """
        queued = os.path.join(self.data_folder_in, name)
        claimed = name.partition('.')[2][:-len('.msg')] \
            not in self._no_ack_queues
        taken = os.path.join(self._claims_folder if claimed
                             else tempfile.gettempdir(), name)
        if claimed:
            os.makedirs(self._claims_folder, exist_ok=True)
        try:
            # Claims are beside the queue: the move is a rename.
            (os.replace if claimed else shutil.move)(queued, taken)
        except OSError:
            return None  # another consumer took it
        try:
            with open(taken, 'rb') as handle:
                # Waits for a plain-kombu writer that holds its lock.
                filesystem.lock(handle, filesystem.LOCK_SH)
                payload = handle.read()
        except OSError as exc:
            raise ChannelError(f'Cannot read file {taken!r} from the '
                               f'queue: {exc}') from exc
        try:
            message = loads(bytes_to_str(payload))
        except ValueError:
            self._put_back(taken, queued)
            return None
        if claimed:
            tag = message.get('properties', {}).get('delivery_tag')
            self._claims[tag] = taken
        else:
            self._done_with(taken)
        return message

    def _done_with(self, taken):
        """A message read for good: delete it, or keep it as processed."""
        if self.store_processed:
            shutil.move(taken, os.path.join(self.processed_folder,
                                            os.path.basename(taken)))
        else:
            remove(taken)

    def _settled(self, delivery_tag):
        """Acknowledged, rejected or restored: its claim is over."""
        taken = self._claims.pop(delivery_tag, None)
        if taken is not None:
            self._done_with(taken)

    def _restore(self, message):
        super()._restore(message)  # a new file in the queue
        self._settled(message.delivery_tag)

    def _reclaim(self):
        """Put the claims of processes that no longer run back in the
        queue, oldest first, under their own names (so in their order)."""
        self._reclaimed_at = time.monotonic()
        root = os.path.join(self.data_folder_in, CLAIMS)
        try:
            owners = os.listdir(root)
        except FileNotFoundError:
            return
        for owner in owners:
            if process_alive(owner):
                continue
            folder = os.path.join(root, owner)
            try:
                names = os.listdir(folder)
            except FileNotFoundError:
                continue  # another consumer reclaimed it
            for name in names:
                try:
                    os.replace(os.path.join(folder, name),
                               os.path.join(self.data_folder_in, name))
                except FileNotFoundError:
                    continue
                log.warning('broker message %s was read by process %s, '
                            'which died before it was done: queued again',
                            name, owner)
            try:
                os.rmdir(folder)
            except OSError:
                pass

    def _put_back(self, taken, queued):
        age = time.time() - os.stat(taken).st_mtime
        if age < UNREADABLE_AFTER:
            shutil.move(taken, queued)  # still being written: next poll
            return
        aside = f'{queued}.unreadable'
        shutil.move(taken, aside)
        log.error('broker message %s does not decode after %ds; set aside '
                  'as %s', os.path.basename(queued), age, aside)

    def _discard(self, name):
        try:
            os.remove(os.path.join(self.data_folder_in, name))
        except FileNotFoundError:
            pass  # another consumer took it

    # -- queues that expire ---------------------------------------------------

    def prepare_queue_arguments(self, arguments, **kwargs):
        """``expires`` and ``message_ttl`` as ``x-expires`` and
        ``x-message-ttl`` (kombu's base drops them; its Redis transport
        keeps them the same way)."""
        return to_rabbitmq_queue_arguments(arguments, **kwargs)

    def _new_queue(self, queue, auto_delete=False, arguments=None, **kwargs):
        super()._new_queue(queue, **kwargs)
        if auto_delete:
            self._auto_delete_queues.add(queue)
        expiry = queue_expiry(arguments)
        marker = self._marker(queue)
        if expiry is None or marker is None:
            return
        self.connection.expiring_queues[queue] = expiry
        self._write_marker(marker, expiry)
        self._kept_alive_at[queue] = time.monotonic()

    def basic_consume(self, queue, no_ack, *args, **kwargs):
        if queue in self._auto_delete_queues:
            self._consumed_auto_delete.add(queue)
        if no_ack:
            self._no_ack_queues.add(queue)
        else:
            self._reclaim()
        return super().basic_consume(queue, no_ack, *args, **kwargs)

    def basic_get(self, queue, no_ack=False, **kwargs):
        self._keep_alive((queue,))
        if no_ack:
            self._no_ack_queues.add(queue)
        return super().basic_get(queue, no_ack, **kwargs)

    def basic_ack(self, delivery_tag, multiple=False):
        super().basic_ack(delivery_tag, multiple)
        self._settled(delivery_tag)
        self.connection.deliver_soon()

    def basic_reject(self, delivery_tag, requeue=False):
        super().basic_reject(delivery_tag, requeue)  # requeue: _restore
        self._settled(delivery_tag)
        self.connection.deliver_soon()

    def drain_events(self, *args, **kwargs):
        self._keep_alive(self._active_queues)
        if time.monotonic() - self._reclaimed_at > RECLAIM_INTERVAL:
            self._reclaim()
        return super().drain_events(*args, **kwargs)

    def _keep_alive(self, queues):
        """Touch the markers of the expiring queues polled here, at most
        once per :data:`KEEPALIVE_INTERVAL` (and four times per expiry)."""
        now = time.monotonic()
        for queue in queues:
            expiry = self.connection.expiring_queues.get(queue)
            if expiry is None or now - self._kept_alive_at.get(queue, 0) \
                    < min(KEEPALIVE_INTERVAL, expiry[0] / 4):
                continue
            self._kept_alive_at[queue] = now
            try:
                os.utime(self._marker(queue))
            except FileNotFoundError:
                self._declare_again(queue, expiry)

    def _declare_again(self, queue, expiry):
        """This process was away for longer than the queue's expiry (a
        publisher dropped it): declare and bind it again."""
        log.warning('broker queue %s had expired while its consumer was '
                    'not polling it; declared again', queue)
        self._write_marker(self._marker(queue), expiry)
        for exchange, routing_key, arguments in \
                self.state.queue_bindings(queue):
            self._queue_bind(exchange, *self.typeof(exchange).prepare_bind(
                queue, exchange, routing_key, arguments))

    def get_table(self, exchange):
        """The exchange's bindings, less those of expired queues (which
        are dropped on the way)."""
        table = super().get_table(exchange)
        overdue = {binding.queue: self._overdue(binding.queue)
                   for binding in table}
        # Expiring queues as they were when looked up: see _put.
        self._expiring_at_lookup = {queue for queue, seconds in
                                    overdue.items() if seconds is not None}
        expired = {queue for queue, seconds in overdue.items()
                   if (seconds or 0) > 0}
        if not expired:
            return table
        for queue in expired:
            self._drop(queue)
        return [binding for binding in table if binding.queue not in expired]

    def _overdue(self, queue):
        """Seconds past its expiry since the queue was last polled (< 0 if
        still alive); None for a queue that does not expire (or is gone)."""
        marker = self._marker(queue)
        if marker is None:
            return None
        try:
            stat = os.stat(marker)
        except FileNotFoundError:
            return None
        expires = read_expires(marker, stat.st_ino)
        if expires is None:
            return None
        return time.time() - stat.st_mtime - expires

    def _drop(self, queue):
        """Unbind ``queue`` from every exchange, delete its messages and
        its marker; unless its consumer came back meanwhile."""
        unbound = [(exchange, binding)
                   for exchange in self.control_folder.glob('*.exchange')
                   for binding in unbind(exchange, queue)]
        overdue = self._overdue(queue)
        if overdue is None:
            return  # another publisher dropped it meanwhile
        if overdue <= 0:  # polled again meanwhile: bound again
            for exchange, binding in unbound:
                self._queue_bind(exchange.name[:-len('.exchange')], *binding)
            return
        marker = self._marker(queue)
        expires = _expires_read.pop(marker, (None, '?'))[1]
        remove(marker)  # before the messages: see _put
        deleted = self._purge(queue)
        log.info('broker queue %s expired (not polled for %ss): unbound, '
                 '%d messages deleted', queue, expires, deleted)

    def _delete(self, queue, *args, **kwargs):
        remove(self._marker(queue))  # before the messages: see _put
        super()._delete(queue, *args, **kwargs)
        self.connection.expiring_queues.pop(queue, None)

    def close(self):
        """Delete the auto-delete queues consumed here, as RabbitMQ does when
        their consumer goes and kombu's Redis transport on close."""
        if not self.closed and self.connection is not None:
            for queue in self._consumed_auto_delete:
                try:
                    self.queue_delete(queue)
                except (OSError, ChannelError) as exc:
                    log.warning('broker queue %s not deleted: %s', queue,
                                exc)
        super().close()

    def _marker(self, queue):
        """``CONTROL/QUEUE.queue``; None for a name no file may have."""
        if not isinstance(queue, str) or not QUEUE_NAME.match(queue) \
                or not queue.strip('.'):
            return None
        return os.path.join(self.control_folder, queue + MARKER_SUFFIX)

    def _write_marker(self, marker, expiry):
        os.makedirs(os.path.dirname(marker), exist_ok=True)
        partial = f'{marker}.{uuid.uuid4().hex}.part'
        with open(partial, 'w') as handle:
            handle.write(dumps({'expires': expiry[0],
                                'message_ttl': expiry[1]}))
        os.replace(partial, marker)


#: marker path: (inode, expires); a marker is written once and touched.
_expires_read = {}


def read_expires(marker, inode):
    """The expiry written in ``marker`` (read once per inode), or None."""
    cached = _expires_read.get(marker)
    if cached is not None and (inode is None or cached[0] == inode):
        return cached[1]
    try:
        with open(marker) as handle:
            expires = float(loads(handle.read())['expires'])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if inode is not None:
        _expires_read[marker] = (inode, expires)
    return expires


def unbind(exchange_file, queue):
    """Remove ``queue``'s bindings from an exchange file; return them."""
    try:
        handle = open(exchange_file, 'rb+', buffering=0)
    except FileNotFoundError:
        return []
    with handle:
        filesystem.lock(handle, filesystem.LOCK_EX)
        try:
            table = [filesystem.exchange_queue_t(*binding) for binding
                     in loads(bytes_to_str(handle.read()) or '[]')]
            removed = [binding for binding in table if binding.queue == queue]
            if removed:
                handle.seek(0)
                handle.write(str_to_bytes(dumps(
                    [binding for binding in table
                     if binding.queue != queue])))
                handle.truncate()
        finally:
            filesystem.unlock(handle)
    return removed


def written_before(name, oldest):
    """Whether the message file ``name`` was written before ``oldest``
    (``time.monotonic()`` in ms, as :meth:`Channel._put` names files)."""
    try:
        return int(name.partition('_')[0]) < oldest
    except ValueError:
        return False


def process_identity(pid=None):
    """``PID-START``: a process, told apart from a later one with its pid
    (START is its start time in clock ticks since boot, where /proc says)."""
    pid = os.getpid() if pid is None else pid
    return f'{pid}-{process_start(pid) or 0}'


def process_start(pid):
    try:
        with open(f'/proc/{pid}/stat') as handle:
            # Field 22, after the command name, which may hold spaces.
            return int(handle.read().rpartition(')')[2].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def process_alive(identity):
    """Does the process named by :func:`process_identity` still run?"""
    pid, _, start = identity.partition('-')
    try:
        pid, start = int(pid), int(start)
    except ValueError:
        return True  # not ours: leave it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it runs, as another user
    return start == 0 or process_start(pid) in (start, None)


def remove(path):
    if path is not None:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


class Transport(filesystem.Transport):
    Channel = Channel
    implements = filesystem.Transport.implements.extend(asynchronous=True)
    _poll_timer = None
    _loop = None
    _delivery_due = False
    #: queue: (expires, message_ttl) of the expiring queues declared in this
    #: process (kombu keeps this transport's bindings per process, too).
    expiring_queues = {}

    def register_with_event_loop(self, connection, loop):
        """Poll the folders from the worker's event loop (see the module's
        docstring), every ``polling_interval`` seconds."""
        self._cancel_polling()
        self._loop = loop
        self._poll_timer = loop.call_repeatedly(
            self.polling_interval or 1.0, self._deliver_ready, connection)

    def deliver_soon(self):
        """A message was settled, so a consumer whose prefetch was full has
        room: deliver at the loop's next turn, not at the next poll (with
        -c 2 and prefetch 8, polling alone caps a worker at 8 tasks per
        ``polling_interval``)."""
        if self._loop is not None and not self._delivery_due:
            self._delivery_due = True
            self._loop.call_soon(self._deliver_ready, self)

    def _deliver_ready(self, connection):
        """Deliver what the folders hold now (as the consumers' prefetch
        allows), without waiting."""
        self._delivery_due = False
        try:
            while True:
                self.drain_events(connection, timeout=0)
        except socket.timeout:
            pass

    def _cancel_polling(self):
        self._loop = None
        if self._poll_timer is not None:
            self._poll_timer.cancel()
            self._poll_timer = None

    def close_connection(self, connection):
        self._cancel_polling()
        super().close_connection(connection)
