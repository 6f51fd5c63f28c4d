"""The summary report's tables and answers: conversions, the community's daily activity."""

from __future__ import annotations

import uuid
from datetime import date, datetime

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


class CommunityActivityDay(EventsModel, table=True):
    """Read model of content's facts: posts, comments and reactions per community per UTC day."""

    __tablename__ = "community_activity_days"

    community_id: uuid.UUID = Field(primary_key=True)
    day: date = Field(primary_key=True)
    posts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    comments: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    reactions: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class ActivityCounts(EventsModel):
    """The community's activity over one window of days (UTC, both ends included)."""

    first_day: date
    last_day: date
    posts: int
    comments: int
    reactions: int
    total: int


class CommunityActivityChange(EventsModel):
    """The community's activity the 7 days before the activity vs the 7 days after it."""

    before: ActivityCounts
    after: ActivityCounts
    # after - before, per figure; and the total's change in percent (None when before is 0).
    change_posts: int
    change_comments: int
    change_reactions: int
    change_total: int
    change_total_pct: float | None
    # False while the after window has not ended yet: its figures are still growing.
    after_complete: bool


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
    community_activity: CommunityActivityChange
