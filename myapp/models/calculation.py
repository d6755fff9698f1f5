import datetime

from sqlalchemy import JSON, Column, DateTime, Float, Integer, String

from .meta import Base


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


class Calculation(Base):
    """A sum worked out by the ``myapp.tasks.record_sum`` task."""

    __tablename__ = 'calculations'

    id = Column(Integer, primary_key=True)
    operation = Column(String(32), nullable=False)
    operands = Column(JSON, nullable=False)
    result = Column(Float, nullable=False)
    created_at = Column(DateTime(timezone=True), nullable=False,
                        default=utcnow)
