"""Recurring series: an RFC 5545 rule that materializes activities up to a bounded horizon."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import field_validator
from sqlalchemy import JSON, Column
from sqlmodel import Field

from hearth_events.models import ActivityCreate, ActivityUpdate, EventsModel
from servicekit.ids import utcnow, uuid7
from servicekit.types import UtcDateTime, UtcDatetime, as_utc


class ActivitySeries(EventsModel, table=True):
    """A recurring activity: its rule, exceptions and the template its occurrences copy."""

    __tablename__ = "activity_series"

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    community_id: uuid.UUID = Field(index=True)
    # RRULE value (e.g. FREQ=WEEKLY;BYDAY=TU), read with dateutil in the series' zone.
    rrule: str = Field(max_length=500)
    # EXDATE: occurrence starts (UTC, ISO 8601) that do not happen.
    exdates: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    # The first occurrence's body (ActivityCreate as JSON): every occurrence copies it.
    template: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    timezone: str = Field(max_length=64)
    # A rolling horizon: occurrences exist up to `horizon_days` ahead of now (at creation, of
    # the first start); the rule is materialized up to `materialized_until` (inclusive), which
    # only the scheduler's conditional UPDATE moves on (series/horizon.py).
    horizon_days: int
    materialized_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_by: uuid.UUID
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class SeriesCreate(EventsModel):
    """Body of POST /series: the first occurrence, the rule and its exceptions."""

    activity: ActivityCreate
    rrule: str = Field(min_length=1, max_length=500)
    exdates: list[datetime] = Field(default_factory=list, max_length=200)
    # Occurrences are created this far ahead of the first one (at most MAX_OCCURRENCES).
    horizon_days: int = Field(default=90, ge=1, le=366)

    @field_validator("exdates")
    @classmethod
    def _aware(cls, value: list[datetime]) -> list[datetime]:
        if any(d.tzinfo is None for d in value):
            raise ValueError("exdates must carry a UTC offset (RFC 3339)")
        return [as_utc(d) for d in value]


class EditScope(StrEnum):
    """Which occurrences an edit changes."""

    this = "this"
    following = "following"


class OccurrenceEditRequest(EventsModel):
    """Body of PATCH /series/{id}/occurrences/{activity_id}."""

    scope: EditScope = EditScope.this
    changes: ActivityUpdate


class SeriesPublic(EventsModel):
    """A series and its occurrences (activity ids, soonest first)."""

    id: uuid.UUID
    community_id: uuid.UUID
    rrule: str
    exdates: list[UtcDatetime]
    timezone: str
    horizon_days: int
    created_at: UtcDatetime
    occurrences: list[uuid.UUID]
