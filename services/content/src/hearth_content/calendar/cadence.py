"""A column's planned slots: the occurrences of its cadence in its time zone, as UTC times."""

from __future__ import annotations

import calendar as _cal
import unicodedata
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hearth_content.calendar.models import CadenceKind, ContentColumn

_SLOT_NS = uuid.UUID("6b1f3a52-4c1e-4e0b-9d1f-2f0c9a6f8e11")


def slot_id(column_id: uuid.UUID, starts_at: datetime) -> uuid.UUID:
    """A planned slot's stable id: the same column and time always give the same id."""
    return uuid.uuid5(_SLOT_NS, f"{column_id}/{starts_at.astimezone(UTC).isoformat()}")


def occurrences(column: ContentColumn, start: datetime, end: datetime) -> list[datetime]:
    """The column's slot times (UTC) in [start, end)."""
    zone = ZoneInfo(column.time_zone)
    at = time(column.hour, column.minute)
    first = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date() + timedelta(days=1)
    found = []
    for day in _days(column, first, last):
        # A wall-clock time that DST skips resolves forward (zoneinfo's fold=0 rule).
        local = datetime.combine(day, at, tzinfo=zone)
        utc = local.astimezone(UTC)
        if start <= utc < end:
            found.append(utc)
    return found


def is_occurrence(column: ContentColumn, starts_at: datetime) -> bool:
    """Whether this time is one of the column's planned slots."""
    window = timedelta(minutes=1)
    return starts_at.astimezone(UTC) in occurrences(column, starts_at - window, starts_at + window)


def normalize_tag(label: str) -> str:
    """A tag's per-community key: NFKC (full-width → half-width), case-folded, spaces → '-'."""
    text = unicodedata.normalize("NFKC", label).casefold().strip().lstrip("#")
    return "-".join(text.split())


def _days(column: ContentColumn, first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        if column.cadence == CadenceKind.weekly:
            if day.weekday() == column.weekday:
                yield day
        elif column.cadence == CadenceKind.monthly and column.day_of_month is not None:
            month_end = _cal.monthrange(day.year, day.month)[1]
            if day.day == min(column.day_of_month, month_end):
                yield day
        day += timedelta(days=1)
