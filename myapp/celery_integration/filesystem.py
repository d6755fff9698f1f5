"""kombu's filesystem transport, safe against half-written messages.

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
  seconds.  Nothing is deleted unread.

Used for every ``filesystem://`` broker through Celery's
``broker_transport`` setting (see :mod:`.settings`).
"""
import logging
import os
import shutil
import tempfile
import time
import uuid

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

log = logging.getLogger(__name__)

#: A file this old that still does not decode is not being written: it is
#: broken, and set aside as ``NAME.unreadable`` beside the queue.
UNREADABLE_AFTER = 60
PARTIAL_PREFIX = 'writing-'


class Channel(filesystem.Channel):

    def _put(self, queue, payload, **kwargs):
        """Write the message beside the queue, then rename it into it."""
        name = f'{int(round(time.monotonic() * 1000))}_{uuid.uuid4()}.' \
               f'{queue}.msg'
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

    def _get(self, queue):
        """The oldest message of ``queue`` that can be read whole."""
        wanted = f'{queue}.msg'
        for name in sorted(os.listdir(self.data_folder_in)):
            if name.partition('.')[2] == wanted:
                message = self._take(name)
                if message is not None:
                    return message
        raise filesystem.Empty()

    def _take(self, name):
        """Move the file out of the queue and decode it; None if another
        consumer took it first or it is not whole yet (then it goes back).
        """
        queued = os.path.join(self.data_folder_in, name)
        taken = os.path.join(self.processed_folder if self.store_processed
                             else tempfile.gettempdir(), name)
        try:
            shutil.move(queued, taken)
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
        if not self.store_processed:
            os.remove(taken)
        return message

    def _put_back(self, taken, queued):
        age = time.time() - os.stat(taken).st_mtime
        if age < UNREADABLE_AFTER:
            shutil.move(taken, queued)  # still being written: next poll
            return
        aside = f'{queued}.unreadable'
        shutil.move(taken, aside)
        log.error('broker message %s does not decode after %ds; set aside '
                  'as %s', os.path.basename(queued), age, aside)


class Transport(filesystem.Transport):
    Channel = Channel
