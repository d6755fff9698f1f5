"""Column types that behave the same on SQLite and PostgreSQL."""
import datetime

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator

UTC = datetime.timezone.utc


def utcnow():
    return datetime.datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime, on every database.

    PostgreSQL keeps the offset (``timestamptz``); SQLite keeps naive text,
    which would come back naive.  Values are stored in UTC and always come
    back aware, so times compare and order the same on both; a naive value
    is refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f'naive datetime {value!r}: give it a timezone')
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == 'sqlite' \
            else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
