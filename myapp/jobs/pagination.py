"""Keyset pagination of the job list, newest first.

A page ends where the next begins: after the (created_at, id) of its last
job, which the opaque ``next`` cursor carries.  Unlike OFFSET, reading page
1000 costs what reading page 1 does, and a job added meanwhile neither
shifts nor repeats rows (see benchmarks/job_list.py).
"""
import base64
import binascii
import datetime
import json
from dataclasses import dataclass, fields

from sqlalchemy import Text, cast, or_, select, tuple_

from ..models.job import Job
from ..models.types import UTC
from .values import text_problem


class InvalidCursor(ValueError):
    pass


@dataclass(frozen=True)
class JobFilter:
    """Which jobs a list shows (the API's, the dashboard's, a bulk
    retry's): each field given narrows it.  Each is served by an index
    on (field, created_at) but ``text``, which reads the arguments of the
    jobs it passes, newest first, until a page is full."""
    task: str = None
    state: str = None
    origin: str = None
    worker: str = None
    #: Created at or after ``after``, before ``until`` (aware datetimes).
    after: datetime.datetime = None
    until: datetime.datetime = None
    #: A job id, or text found in the JSON of the arguments.
    text: str = None

    COLUMNS = {'task': Job.task_name, 'state': Job.state,
               'origin': Job.origin, 'worker': Job.worker}

    def conditions(self):
        found = [column == getattr(self, name)
                 for name, column in self.COLUMNS.items()
                 if getattr(self, name) is not None]
        if self.after is not None:
            found.append(Job.created_at >= self.after)
        if self.until is not None:
            found.append(Job.created_at < self.until)
        if self.text is not None:
            found.append(or_(
                Job.id == self.text,
                cast(Job.args, Text).contains(self.text, autoescape=True),
                cast(Job.kwargs, Text).contains(self.text,
                                                autoescape=True)))
        return found

    def given(self):
        """The fields given, by name (what a page's links carry)."""
        return {field.name: getattr(self, field.name)
                for field in fields(self)
                if getattr(self, field.name) is not None}


EVERY_JOB = JobFilter()


def page_query(limit, before=None, job_filter=EVERY_JOB):
    """One more row than ``limit``: whether there is a next page."""
    query = select(Job).where(*job_filter.conditions()).order_by(
        Job.created_at.desc(), Job.id.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(tuple_(Job.created_at, Job.id) < before)
    return query


def split_page(jobs, limit):
    """(the page, the cursor of the next one or None)."""
    page = jobs[:limit]
    more = len(jobs) > limit
    return page, encode_cursor(page[-1]) if more else None


def encode_cursor(job):
    key = json.dumps([job.created_at.isoformat(), job.id])
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip('=')


def decode_cursor(cursor):
    """The (created_at, id) a cursor carries; InvalidCursor if it is not one.

    A cursor comes back from the client: its id must be text a column can
    hold (NUL or a lone surrogate would reach the database), and its time
    one that UTC can hold (0001-01-01T00:00+05:00 cannot).
    """
    try:
        padded = cursor + '=' * (-len(cursor) % 4)
        created_at, job_id = json.loads(base64.urlsafe_b64decode(padded))
        created_at = datetime.datetime.fromisoformat(created_at)
        if created_at.tzinfo is not None:
            created_at = created_at.astimezone(UTC)
    except (ValueError, TypeError, OverflowError, binascii.Error):
        raise InvalidCursor(cursor) from None
    if created_at.tzinfo is None or not isinstance(job_id, str) \
            or len(job_id) > 36 or text_problem(job_id):
        raise InvalidCursor(cursor)
    return created_at, job_id
