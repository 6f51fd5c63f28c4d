"""The summary report's tables and answers: conversions attributed to an activity."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Field

from hearth_events.models import EventsModel
from servicekit.types import UtcDateTime


class ActivityConversion(EventsModel, table=True):
    """A business conversion metrics attributed to an activity (from conversion.recorded.v1)."""

    __tablename__ = "activity_conversions"

    # Metrics' conversion id: a redelivered fact finds its row and changes nothing.
    conversion_id: uuid.UUID = Field(primary_key=True)
    activity_id: uuid.UUID = Field(index=True)
    community_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    kind: str = Field(max_length=60)
    invite_channel: str | None = Field(default=None, max_length=60)
    value: float = 0
    occurred_at: datetime = Field(sa_type=UtcDateTime)


class ActivitySummary(EventsModel):
    """An activity's summary report (活动总结与评估): the figures, as of now."""

    activity_id: uuid.UUID
    community_id: uuid.UUID
    state: str
    capacity: int
    registrations: int
    confirmed: int
    waitlisted: int
    pending: int
    cancelled: int
    rejected: int
    attended: int
    no_shows: int
    attendance_rate: float | None
    feedback_count: int
    satisfaction_avg: float | None
    nps: float | None
    questions: int
    conversions: int
    conversion_value: float
    conversions_by_kind: dict[str, int]
