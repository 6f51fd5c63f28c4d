"""Calendar tables: columns with a cadence, per-community tags, and bookings of posts to slots.

Planned slots are not stored: they follow from a column's cadence (hearth_content.calendar.
cadence), each with a stable id, so "ahead" has no horizon to refill. A booking pins one post to
one slot of one column; the post's `publish_at` is the slot's time.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, Index, String, Text, UniqueConstraint
from sqlmodel import Field

from hearth_content.models import ContentModel
from servicekit.ids import utcnow, uuid7
from servicekit.types import UtcDateTime


class CadenceKind(StrEnum):
    """How often a column has a slot."""

    weekly = "weekly"
    monthly = "monthly"


class ContentColumn(ContentModel, table=True):
    """A recurring column (固定栏目, e.g. 每周资讯) of one community."""

    __tablename__ = "content_columns"
    __table_args__ = (UniqueConstraint("community_id", "name", name="uq_content_columns_name"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    community_id: uuid.UUID = Field(index=True)
    name: str = Field(max_length=100)
    description: str = Field(default="", sa_type=Text)
    owners: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    cadence: CadenceKind = Field(sa_type=String(16))
    # weekly: 0 = Monday … 6 = Sunday; monthly: day of month (past the month's end: its last day)
    weekday: int | None = None
    day_of_month: int | None = None
    hour: int
    minute: int = 0
    # Members' community snapshot carries no time zone, so each column keeps its own (IANA).
    time_zone: str = Field(max_length=64)
    slot_minutes: int = 60
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class Tag(ContentModel, table=True):
    """A topic tag of one community, stored by its normalized form."""

    __tablename__ = "content_tags"

    community_id: uuid.UUID = Field(primary_key=True)
    slug: str = Field(primary_key=True, max_length=64)
    label: str = Field(max_length=64)


class Booking(ContentModel, table=True):
    """A post booked into one planned slot of a column (one post per slot, one slot per post)."""

    __tablename__ = "calendar_bookings"
    __table_args__ = (
        UniqueConstraint("column_id", "starts_at", name="uq_calendar_bookings_slot"),
        Index("ix_calendar_bookings_community_starts_at", "community_id", "starts_at"),
    )

    post_id: uuid.UUID = Field(primary_key=True)
    community_id: uuid.UUID
    column_id: uuid.UUID
    starts_at: datetime = Field(sa_type=UtcDateTime)
    booked_by: uuid.UUID
    booked_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
