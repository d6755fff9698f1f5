from sqlalchemy import JSON, Column, Float, Integer, String

from .meta import Base
from .types import UTCDateTime, utcnow


class Calculation(Base):
    """A sum worked out by the ``myapp.tasks.record_sum`` task."""

    __tablename__ = 'calculations'

    id = Column(Integer, primary_key=True)
    operation = Column(String(32), nullable=False)
    operands = Column(JSON, nullable=False)
    result = Column(Float, nullable=False)
    # UTC, and aware when read back on SQLite too (same column type).
    created_at = Column(UTCDateTime, nullable=False, default=utcnow)
