"""Sentiment's tables: each item's score, per-community buckets, baselines and alerts."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict
from pydantic import Field as InputField
from sqlalchemy import Index, String, text
from sqlmodel import Field

from hearth_moderation.models import ModerationModel
from servicekit.ids import utcnow, uuid7
from servicekit.types import CleanInput, UtcDateTime


class SentimentScore(ModerationModel, table=True):
    """One item's score, taken once (its first text)."""

    __tablename__ = "sentiment_scores"

    item_type: str = Field(sa_type=String(20), primary_key=True)
    item_id: uuid.UUID = Field(primary_key=True)
    community_id: uuid.UUID = Field(index=True)
    author_id: uuid.UUID | None = None
    language: str = Field(max_length=8)
    value: float
    negative: bool
    bucket_start: datetime = Field(sa_type=UtcDateTime)
    scored_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class SentimentBucket(ModerationModel, table=True):
    """How many items a community had in one time bucket, and how many were negative."""

    __tablename__ = "sentiment_buckets"

    community_id: uuid.UUID = Field(primary_key=True)
    bucket_start: datetime = Field(sa_type=UtcDateTime, primary_key=True)
    total: int = 0
    negative: int = 0


class SentimentBaseline(ModerationModel, table=True):
    """A community's EWMA of its buckets' negative share (mean and variance), up to a bucket."""

    __tablename__ = "sentiment_baselines"

    community_id: uuid.UUID = Field(primary_key=True)
    mean: float
    variance: float
    buckets: int = 0  # closed buckets folded in so far
    folded_until: datetime | None = Field(default=None, sa_type=UtcDateTime)  # exclusive


class AlertStatus(StrEnum):
    """An alert's life: open → acknowledged → resolved."""

    open = "open"
    acknowledged = "acknowledged"
    resolved = "resolved"


class SentimentAlert(ModerationModel, table=True):
    """A spike of negative sentiment in one community: one alert per spike until resolved."""

    __tablename__ = "sentiment_alerts"
    __table_args__ = (
        # At most one unresolved alert per community, whatever the races between replicas.
        Index(
            "uq_sentiment_alert_unresolved",
            "community_id",
            unique=True,
            postgresql_where=text("status <> 'resolved'"),
            sqlite_where=text("status <> 'resolved'"),
        ),
        Index("ix_sentiment_alerts_community_id_id", "community_id", "id"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    community_id: uuid.UUID
    status: AlertStatus = Field(default=AlertStatus.open, sa_type=String(16))
    bucket_start: datetime = Field(sa_type=UtcDateTime)
    total: int
    negative: int
    share: float
    baseline_mean: float
    baseline_stddev: float
    z: float
    opened_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    owner_id: uuid.UUID | None = None
    acknowledged_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    acknowledged_by: uuid.UUID | None = None
    resolved_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    resolved_by: uuid.UUID | None = None
    note: str | None = Field(default=None, max_length=2000)


class SentimentAlertPublic(BaseModel):
    """An alert as the community's team sees it."""

    id: uuid.UUID
    community_id: uuid.UUID
    status: AlertStatus
    bucket_start: datetime
    total: int
    negative: int
    share: float
    baseline_mean: float
    baseline_stddev: float
    z: float
    opened_at: datetime
    owner_id: uuid.UUID | None
    acknowledged_at: datetime | None
    acknowledged_by: uuid.UUID | None
    resolved_at: datetime | None
    resolved_by: uuid.UUID | None
    note: str | None


class AlertAcknowledgeRequest(CleanInput):
    """Acknowledge an alert; its owner is `owner_id`, or whoever acknowledges."""

    model_config = ConfigDict(extra="forbid")

    owner_id: uuid.UUID | None = None
    note: str | None = InputField(default=None, max_length=2000)


class AlertResolveRequest(CleanInput):
    """Resolve an acknowledged alert, with what was done."""

    model_config = ConfigDict(extra="forbid")

    note: str | None = InputField(default=None, max_length=2000)


class BucketPublic(BaseModel):
    """One bucket's volume and negative share."""

    bucket_start: datetime
    total: int
    negative: int
    share: float


class SentimentOverview(BaseModel):
    """A community's rolling negative share and volume, its baseline and its unresolved alert."""

    community_id: uuid.UUID
    bucket_seconds: int
    total: int
    negative: int
    share: float
    buckets: list[BucketPublic]
    baseline_mean: float
    baseline_stddev: float
    baseline_buckets: int
    alert: SentimentAlertPublic | None
