"""Conversions reported by business systems, and the API models around them."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field as PydanticField
from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field

from hearth_metrics.models import MetricsModel
from servicekit.ids import utcnow, uuid7
from servicekit.types import UtcDateTime, UtcDatetime

KNOWN_KINDS = ("purchase", "referral", "partnership")
"""The named kinds; any other lower-case slug is a custom kind of the business system's own."""
KIND_PATTERN = r"^[a-z][a-z0-9_.-]{0,39}$"
ID_PATTERN = r"^[A-Za-z0-9_.:\-]{1,200}$"


class Conversion(MetricsModel, table=True):
    """One conversion, unique by (source, external_id): the caller's id, scoped to the caller."""

    __tablename__ = "conversions"
    __table_args__ = (
        UniqueConstraint("source", "external_id", name="uq_conversions_source_external_id"),
        Index("ix_conversions_community_occurred", "community_id", "occurred_at"),
        Index("ix_conversions_activity", "activity_id"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    source: str = Field(max_length=200)
    external_id: str = Field(max_length=200)
    fingerprint: str = Field(max_length=64)
    kind: str = Field(max_length=40)
    community_id: uuid.UUID
    user_id: uuid.UUID | None = None
    activity_id: uuid.UUID | None = None
    invite_channel: str | None = Field(default=None, max_length=80)
    value: float | None = None
    currency: str | None = Field(default=None, max_length=3)
    occurred_at: datetime = Field(sa_type=UtcDateTime)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ConversionCreate(MetricsModel):
    """Body of POST /conversions (and the payload of the NATS subject): one conversion.

    `id` is the caller's own id: the same id again is the same conversion (no new row, no new
    event); the same id with a different payload is refused (409 over HTTP).
    """

    id: str = PydanticField(pattern=ID_PATTERN)
    kind: str = PydanticField(pattern=KIND_PATTERN)
    community_id: uuid.UUID
    user_id: uuid.UUID | None = None
    activity_id: uuid.UUID | None = None
    invite_channel: str | None = Field(default=None, min_length=1, max_length=80)
    value: float | None = Field(default=None, ge=0, le=1e12)
    currency: str | None = PydanticField(default=None, pattern=r"^[A-Z]{3}$")
    occurred_at: UtcDatetime


class ConversionPublic(MetricsModel):
    """A recorded conversion as its reporter and the community's readers see it."""

    id: uuid.UUID
    external_id: str
    kind: str
    community_id: uuid.UUID
    user_id: uuid.UUID | None
    activity_id: uuid.UUID | None
    invite_channel: str | None
    value: float | None
    currency: str | None
    occurred_at: UtcDatetime
    recorded_at: UtcDatetime


class RateRow(MetricsModel):
    """One group's conversion rate: converting people over the group's base (null: suppressed)."""

    key: str
    conversions: int | None
    converted: int | None
    base: int | None
    rate: float | None
    value: float | None = None
    suppressed: str | None = None


class ConversionRates(MetricsModel):
    """Conversion rates of a community over a range, overall and per activity and channel."""

    community_id: uuid.UUID
    since: UtcDatetime
    until: UtcDatetime
    kind: str | None
    community: RateRow
    by_activity: list[RateRow]
    by_channel: list[RateRow]
