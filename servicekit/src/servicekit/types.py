"""Column and field types every service shares, so time is UTC and timezone-aware everywhere."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator
from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator


def as_utc(value: datetime) -> datetime:
    """The same instant as an aware UTC datetime (naive values are taken to be UTC).

    Raises ValueError when that instant falls outside years 1-9999 in UTC (e.g.
    `9999-12-31T23:00:00-23:59`): a ValueError is what Pydantic turns into a 422, while the
    OverflowError from `astimezone` would pass through it as a 500.
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("the time is out of range once converted to UTC") from exc


UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]
"""A Pydantic field type: any aware datetime in, UTC out."""


class UtcDateTime(TypeDecorator[datetime]):
    """TIMESTAMPTZ on PostgreSQL; on SQLite (which keeps no zone) read back as aware UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Store UTC."""
        return None if value is None else as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Return aware UTC whatever the backend gave back."""
        return None if value is None else as_utc(value)
