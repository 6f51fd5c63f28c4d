"""Request and response bodies of the calendar routes."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, field_validator, model_validator

from hearth_content.calendar.models import CadenceKind
from servicekit.types import CleanInput, UtcDatetime


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {value!r} (use an IANA name like Asia/Shanghai)"
        ) from exc
    return value


class ColumnIn(CleanInput):
    """Body of POST /communities/{id}/columns."""

    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=2000)
    owners: list[uuid.UUID] = Field(default_factory=list, max_length=20)
    tags: list[str] = Field(default_factory=list, max_length=20)
    cadence: CadenceKind
    weekday: int | None = Field(default=None, ge=0, le=6)
    day_of_month: int | None = Field(default=None, ge=1, le=31)
    hour: int = Field(ge=0, le=23)
    minute: int = Field(default=0, ge=0, le=59)
    time_zone: str = Field(default="UTC", max_length=64)
    slot_minutes: int = Field(default=60, ge=5, le=1440)

    _tz = field_validator("time_zone")(_zone)

    @field_validator("name")
    @classmethod
    def _strip(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name must not be blank")
        return value.strip()

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        if any(not t.strip().lstrip("#") or len(t) > 64 for t in value):
            raise ValueError("tags are 1 to 64 characters")
        return value

    @model_validator(mode="after")
    def _cadence_needs(self) -> ColumnIn:
        if self.cadence == CadenceKind.weekly and self.weekday is None:
            raise ValueError("a weekly column needs a weekday (0 = Monday)")
        if self.cadence == CadenceKind.monthly and self.day_of_month is None:
            raise ValueError("a monthly column needs a day_of_month")
        return self


class ColumnUpdate(CleanInput):
    """Body of PATCH /columns/{id}: the fields to change (omitted ones stay).

    The merged column is checked like a new one (a weekly column needs its weekday, …).
    """

    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=2000)
    owners: list[uuid.UUID] | None = Field(default=None, max_length=20)
    tags: list[str] | None = Field(default=None, max_length=20)
    cadence: CadenceKind | None = None
    weekday: int | None = Field(default=None, ge=0, le=6)
    day_of_month: int | None = Field(default=None, ge=1, le=31)
    hour: int | None = Field(default=None, ge=0, le=23)
    minute: int | None = Field(default=None, ge=0, le=59)
    time_zone: str | None = Field(default=None, max_length=64)
    slot_minutes: int | None = Field(default=None, ge=5, le=1440)


class ColumnOut(BaseModel):
    """A column as clients see it."""

    id: uuid.UUID
    community_id: uuid.UUID
    name: str
    description: str
    owners: list[uuid.UUID]
    tags: list[str]
    cadence: CadenceKind
    weekday: int | None
    day_of_month: int | None
    hour: int
    minute: int
    time_zone: str
    slot_minutes: int


class TagOut(BaseModel):
    """A community's tag."""

    slug: str
    label: str


class BookIn(CleanInput):
    """Body of PUT /posts/{id}/slot: a planned slot of a column (books, or moves a booking)."""

    column_id: uuid.UUID
    starts_at: UtcDatetime


class BookingOut(BaseModel):
    """A post's booking."""

    post_id: uuid.UUID
    column_id: uuid.UUID
    slot_id: uuid.UUID
    starts_at: datetime


class BookedPost(BaseModel):
    """The post in a slot (or booked by time without a column)."""

    id: uuid.UUID
    title: str
    status: str
    author_id: uuid.UUID


class SlotOut(BaseModel):
    """A planned slot in the calendar; `gap` when nothing is booked into it."""

    slot_id: uuid.UUID
    column_id: uuid.UUID
    column_name: str
    starts_at: datetime
    ends_at: datetime
    post: BookedPost | None
    gap: bool


class CalendarView(BaseModel):
    """A week or month of one community's calendar."""

    community_id: uuid.UUID
    view: Literal["week", "month"]
    time_zone: str
    start: datetime
    end: datetime
    slots: list[SlotOut]
    gaps: int
    # Posts with a publish time but no column slot (booked at submission).
    unslotted: list[tuple[datetime, BookedPost]]


def parse_day(value: str | None) -> date | None:
    """An ISO date from a query string."""
    return date.fromisoformat(value) if value else None


__all__ = ["_zone"]
