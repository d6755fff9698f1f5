"""Who asked for a job: the one owner of the ``origin`` text.

Every job records where it came from, as ``kind`` or ``kind:name``:

* ``http``: a web request (the jobs API, a page);
* ``shell``: pshell, a script, anything outside a request or task;
* ``task:ID``: sent by the running job ``ID`` (its parent);
* ``beat:NAME``: sent by the periodic job ``NAME``;
* ``worker:HOST``: sent by a worker itself (at start-up), or a job that a
  worker found with no record of who sent it.

Code builds and reads origins only through :class:`Origin`, never by
formatting or splitting the text, so the text has one definition.
"""
from typing import NamedTuple, Optional

HTTP, SHELL, TASK, BEAT, WORKER = 'http', 'shell', 'task', 'beat', 'worker'
KINDS = (HTTP, SHELL, TASK, BEAT, WORKER)


class Origin(NamedTuple):
    kind: str
    name: Optional[str] = None

    @classmethod
    def parse(cls, text):
        """The origin an ``origin`` text (or an :class:`Origin`) names."""
        if isinstance(text, Origin):
            return text
        kind, _, name = str(text).partition(':')
        return cls(kind, name or None)

    @classmethod
    def http(cls):
        return cls(HTTP)

    @classmethod
    def shell(cls):
        return cls(SHELL)

    @classmethod
    def task(cls, parent_id):
        return cls(TASK, parent_id)

    @classmethod
    def beat(cls, schedule_name):
        return cls(BEAT, schedule_name)

    @classmethod
    def worker(cls, hostname):
        return cls(WORKER, hostname)

    @property
    def parent_id(self):
        """The id of the job that sent this one, if a job did."""
        return self.name if self.kind == TASK else None

    @property
    def schedule(self):
        """The name of the periodic job that sent this one, if one did."""
        return self.name if self.kind == BEAT else None

    def __str__(self):
        return self.kind if self.name is None else f'{self.kind}:{self.name}'
