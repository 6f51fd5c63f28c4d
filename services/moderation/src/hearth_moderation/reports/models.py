"""Report tables (each report, each community's policy) and their API models."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import JSON, Column, Index, String, Text, UniqueConstraint
from sqlmodel import Field

from hearth_moderation.models import ModerationModel
from servicekit.ids import utcnow, uuid7
from servicekit.types import CleanInput, UtcDateTime


class ReportReason(StrEnum):
    """Why a member reports something (the taxonomy; `other` needs a text)."""

    spam = "spam"
    harassment = "harassment"
    illegal = "illegal"
    off_topic = "off_topic"
    other = "other"


class ReportTarget(StrEnum):
    """What can be reported."""

    post = "post"
    comment = "comment"
    member = "member"


class ReportStatus(StrEnum):
    """Open until the queue entry is decided: upheld (the reporter was right) or rejected."""

    open = "open"
    upheld = "upheld"
    rejected = "rejected"


DEFAULT_TIER_BONUS: dict[str, float] = {"core": 0.5, "active": 0.25, "regular": 0.0}


class ReportPolicy(ModerationModel, table=True):
    """A community's hide threshold and reporter weights; absent: the defaults below."""

    __tablename__ = "report_policies"

    community_id: uuid.UUID = Field(primary_key=True)
    hide_threshold: float = 3.0  # a reported item is hidden when its weighted score reaches this
    weight_floor: float = 0.1
    weight_cap: float = 3.0
    tier_bonus: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_TIER_BONUS), sa_column=Column(JSON, nullable=False)
    )
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_by: uuid.UUID | None = None


class ReportPolicyPublic(ModerationModel):
    """A community's report policy."""

    community_id: uuid.UUID
    hide_threshold: float
    weight_floor: float
    weight_cap: float
    tier_bonus: dict[str, float]
    updated_at: datetime
    updated_by: uuid.UUID | None


class ReportPolicyUpdate(CleanInput):
    """Body of PATCH /communities/{id}/reports/policy (omitted fields stay)."""

    model_config = ConfigDict(extra="forbid")

    hide_threshold: float | None = PydanticField(default=None, gt=0, le=1000)
    weight_floor: float | None = PydanticField(default=None, ge=0, le=100)
    weight_cap: float | None = PydanticField(default=None, gt=0, le=100)
    tier_bonus: dict[str, float] | None = None


class Report(ModerationModel, table=True):
    """One member's report of one item; one per reporter and item."""

    __tablename__ = "reports"
    __table_args__ = (
        UniqueConstraint("item_type", "item_id", "reporter_id", name="uq_report_reporter_item"),
        Index("ix_reports_reporter_status", "reporter_id", "status"),
        Index("ix_reports_entry_id", "entry_id"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    community_id: uuid.UUID
    item_type: ReportTarget = Field(sa_type=String(16))
    item_id: uuid.UUID
    item_author_id: uuid.UUID | None = None
    reporter_id: uuid.UUID
    reason: ReportReason = Field(sa_type=String(16))
    text: str | None = Field(default=None, sa_type=Text)
    weight: float  # the reporter's weight when they filed it
    weight_detail: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    entry_id: uuid.UUID  # the queue entry of the item's reports
    status: ReportStatus = Field(default=ReportStatus.open, sa_type=String(16))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    resolved_by: uuid.UUID | None = None


class ReportCreate(CleanInput):
    """Body of POST /communities/{id}/reports."""

    model_config = ConfigDict(extra="forbid")

    item_type: ReportTarget
    item_id: uuid.UUID
    reason: ReportReason
    text: str | None = PydanticField(default=None, max_length=2000)


class ReportPublic(ModerationModel):
    """A report as its reporter and the community's team see it."""

    id: uuid.UUID
    community_id: uuid.UUID
    item_type: ReportTarget
    item_id: uuid.UUID
    reporter_id: uuid.UUID
    reason: ReportReason
    text: str | None
    weight: float
    weight_detail: dict[str, Any]
    entry_id: uuid.UUID
    status: ReportStatus
    created_at: datetime
    resolved_at: datetime | None
