"""Per-item fact rows behind the content, activity and moderation measures, and API models.

Each row is keyed by the producer's item id, so a fact delivered twice (the inbox drops it) or
out of order (columns only move one way: counts up, first times earlier) ends at one row.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field

from hearth_metrics.models import MetricsModel
from servicekit.types import UtcDateTime, UtcDatetime


def _zero() -> int:
    return Field(default=0, sa_column_kwargs={"server_default": "0"})


class PostStats(MetricsModel, table=True):
    """One post: its reads, reactions, comments, shares and first response by someone else."""

    __tablename__ = "post_stats"
    __table_args__ = (Index("ix_post_stats_community_published", "community_id", "published_at"),)

    post_id: uuid.UUID = Field(primary_key=True)
    community_id: uuid.UUID
    column_id: uuid.UUID | None = None
    author_id: uuid.UUID | None = None
    title: str | None = Field(default=None, max_length=300)
    published_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    reads: int = _zero()
    reactions: int = _zero()
    comments: int = _zero()
    shares: int = _zero()
    first_response_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class Activity(MetricsModel, table=True):
    """One activity as events published it."""

    __tablename__ = "activities"
    __table_args__ = (Index("ix_activities_community_starts", "community_id", "starts_at"),)

    activity_id: uuid.UUID = Field(primary_key=True)
    community_id: uuid.UUID
    title: str | None = Field(default=None, max_length=300)
    starts_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    ends_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class ActivityAttendee(MetricsModel, table=True):
    """One person's registration, attendance and feedback for one activity."""

    __tablename__ = "activity_attendees"
    __table_args__ = (Index("ix_activity_attendees_community", "community_id"),)

    activity_id: uuid.UUID = Field(primary_key=True)
    user_id: uuid.UUID = Field(primary_key=True)
    community_id: uuid.UUID
    registered_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    cancelled_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    checked_in_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    no_show_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    satisfaction: int | None = None
    nps: int | None = None
    feedback_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class ModerationItem(MetricsModel, table=True):
    """A report, sanction, appeal or sentiment alert: when it opened, closed, and how."""

    __tablename__ = "moderation_items"
    __table_args__ = (Index("ix_moderation_items_community", "community_id", "kind", "opened_at"),)

    item_id: uuid.UUID = Field(primary_key=True)
    kind: str = Field(max_length=20)  # report | sanction | appeal | sentiment
    community_id: uuid.UUID
    user_id: uuid.UUID | None = None
    level: str | None = Field(default=None, max_length=40)
    opened_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    outcome: str | None = Field(default=None, max_length=40)


# --- What clients read ----------------------------------------------------------------------


class ContentItem(MetricsModel):
    """One post's figures."""

    post_id: uuid.UUID
    column_id: uuid.UUID | None
    title: str | None
    published_at: UtcDatetime | None
    reads: int
    reactions: int
    comments: int
    shares: int
    first_response_seconds: float | None


class ColumnFigures(MetricsModel):
    """A column's totals (null id: posts outside any column)."""

    column_id: uuid.UUID | None
    posts: int
    reads: int
    reactions: int
    comments: int
    shares: int


class ContentMeasures(MetricsModel):
    """Content published in [since, until): totals, per column, top posts, responsiveness."""

    community_id: uuid.UUID
    since: UtcDatetime
    until: UtcDatetime
    posts: int
    reads: int
    reactions: int
    comments: int
    shares: int
    median_first_response_seconds: float | None
    unanswered_share: float | None
    by_column: list[ColumnFigures]
    top: list[ContentItem]


class ActivityFigures(MetricsModel):
    """One activity's figures (people counts pass the privacy floor or are null)."""

    activity_id: uuid.UUID
    title: str | None
    starts_at: UtcDatetime | None
    registrations: int | None
    attended: int | None
    no_shows: int | None
    attendance_rate: float | None
    satisfaction: float | None
    nps: float | None
    feedback: int | None
    suppressed: str | None = None


class ActivityMeasures(MetricsModel):
    """Activities starting in [since, until), with totals and the satisfaction/NPS trend."""

    community_id: uuid.UUID
    since: UtcDatetime
    until: UtcDatetime
    activities: int
    registrations: int | None
    attended: int | None
    no_shows: int | None
    attendance_rate: float | None
    satisfaction: float | None
    nps: float | None
    items: list[ActivityFigures]
    suppressed: str | None = None


class ModerationMeasures(MetricsModel):
    """Moderation opened in [since, until): reports, time to action, sanctions, appeals."""

    community_id: uuid.UUID
    since: UtcDatetime
    until: UtcDatetime
    reports: int
    reports_actioned: int
    median_time_to_action_seconds: float | None
    report_outcomes: dict[str, int]
    sanctions: int
    sanctions_by_level: dict[str, int]
    appeals: int
    appeals_decided: int
    appeal_outcomes: dict[str, int]
    sentiment_alerts: int
