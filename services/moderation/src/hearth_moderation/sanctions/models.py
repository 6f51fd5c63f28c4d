"""Sanction tables (the ladder per community, every sanction) and their API models."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, model_validator
from pydantic import Field as PydanticField
from sqlalchemy import JSON, Column, Index, String, Text
from sqlmodel import Field

from hearth_moderation.models import ModerationModel
from servicekit.ids import utcnow, uuid7
from servicekit.types import CleanInput, UtcDateTime

DAY = 86_400


class SanctionLevel(StrEnum):
    """A rung of the ladder, mildest first."""

    warning = "warning"
    mute = "mute"
    removal = "removal"
    ban = "ban"


LEVEL_ORDER = {level: i for i, level in enumerate(SanctionLevel)}


class SanctionStatus(StrEnum):
    """Where a sanction stands: in force, run out, or undone (by an appeal or a moderator)."""

    active = "active"
    expired = "expired"
    lifted = "lifted"
    reduced = "reduced"  # still in force, but less (fewer points, a shorter mute)


class Severity(StrEnum):
    """How bad the offence is; a severity may skip rungs (see Ladder.severities)."""

    minor = "minor"
    major = "major"
    illegal = "illegal"


DEFAULT_SEVERITIES: dict[str, str] = {"minor": "warning", "major": "mute", "illegal": "removal"}


class Ladder(ModerationModel, table=True):
    """A community's sanction ladder; a community without a row uses the defaults below."""

    __tablename__ = "sanction_ladders"

    community_id: uuid.UUID = Field(primary_key=True)
    warning_points: int = 1  # points one warning adds
    points_ttl_seconds: int = 30 * DAY  # a warning's points count for this long
    mute_at: int = 3  # active points that mute ...
    mute_seconds: int = DAY  # ... for this long
    removal_at: int = 5
    ban_at: int = 7
    # severity -> the least level it leads to (illegal content is a removal, whatever the points)
    severities: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_SEVERITIES), sa_column=Column(JSON, nullable=False)
    )
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_by: uuid.UUID | None = None


class LadderPublic(ModerationModel):
    """A community's ladder as its team sees it."""

    community_id: uuid.UUID
    warning_points: int
    points_ttl_seconds: int
    mute_at: int
    mute_seconds: int
    removal_at: int
    ban_at: int
    severities: dict[str, str]
    updated_at: datetime
    updated_by: uuid.UUID | None


class LadderUpdate(CleanInput):
    """Body of PATCH /communities/{id}/sanctions/ladder (omitted fields stay)."""

    model_config = ConfigDict(extra="forbid")

    warning_points: int | None = PydanticField(default=None, ge=1, le=100)
    points_ttl_seconds: int | None = PydanticField(default=None, ge=1, le=3650 * DAY)
    mute_at: int | None = PydanticField(default=None, ge=1, le=1000)
    mute_seconds: int | None = PydanticField(default=None, ge=1, le=365 * DAY)
    removal_at: int | None = PydanticField(default=None, ge=1, le=1000)
    ban_at: int | None = PydanticField(default=None, ge=1, le=1000)
    severities: dict[Severity, SanctionLevel] | None = None


class Sanction(ModerationModel, table=True):
    """One sanction on one member; never deleted (lifting or expiry changes its status)."""

    __tablename__ = "sanctions"
    __table_args__ = (
        Index("ix_sanctions_community_user", "community_id", "user_id", "id"),
        # The expiry pass's scan: sanctions in force whose end has come.
        Index("ix_sanctions_status_ends_at", "status", "ends_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    community_id: uuid.UUID
    user_id: uuid.UUID
    level: SanctionLevel = Field(sa_type=String(16))
    points: int = 0  # warning points (0 for other levels)
    reason: str = Field(max_length=500)
    severity: str | None = Field(default=None, max_length=16)
    # manual (a moderator), ladder (points reached a rung), severity (skipped rungs)
    cause: str = Field(default="manual", max_length=16)
    actor_id: uuid.UUID | None = None  # the moderator; None when the ladder escalated
    triggered_by: uuid.UUID | None = None  # the warning that made the ladder escalate
    item_type: str | None = Field(default=None, max_length=16)
    item_id: uuid.UUID | None = None
    quote: str | None = Field(default=None, sa_type=Text)  # the offending text, from evidence
    evidence_ref: str = Field(default="", max_length=200)
    status: SanctionStatus = Field(default=SanctionStatus.active, sa_type=String(16))
    starts_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    # A warning's points stop counting / a mute ends; None: until lifted (removal, ban).
    ends_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    ended_by: uuid.UUID | None = None
    end_reason: str | None = Field(default=None, max_length=500)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class SanctionPublic(ModerationModel):
    """A sanction as the member concerned and the community's team see it."""

    id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    level: SanctionLevel
    points: int
    reason: str
    severity: str | None
    cause: str
    actor_id: uuid.UUID | None
    triggered_by: uuid.UUID | None
    item_type: str | None
    item_id: uuid.UUID | None
    quote: str | None
    status: SanctionStatus
    starts_at: datetime
    ends_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None


class SanctionCreate(CleanInput):
    """Body of POST /communities/{id}/sanctions: a moderator's sanction, with a reason.

    `severity` may raise the level (illegal → removal); a warning's points climb the ladder.
    """

    model_config = ConfigDict(extra="forbid")

    user_id: uuid.UUID
    level: SanctionLevel = SanctionLevel.warning
    reason: str = PydanticField(min_length=1, max_length=500)
    severity: Severity | None = None
    points: int | None = PydanticField(default=None, ge=1, le=100)
    duration_seconds: int | None = PydanticField(default=None, ge=1, le=365 * DAY)
    item_type: str | None = PydanticField(default=None, pattern="^(post|comment|member)$")
    item_id: uuid.UUID | None = None
    quote: str | None = PydanticField(default=None, max_length=2000)

    @model_validator(mode="after")
    def _item_pair(self) -> SanctionCreate:
        if (self.item_type is None) != (self.item_id is None):
            raise ValueError("item_type and item_id go together")
        return self


class LiftRequest(CleanInput):
    """Body of POST /sanctions/{id}/lift: why the sanction is undone."""

    model_config = ConfigDict(extra="forbid")

    reason: str = PydanticField(min_length=1, max_length=500)


class Standing(ModerationModel):
    """A member's standing in a community: active points and the sanctions in force."""

    community_id: uuid.UUID
    user_id: uuid.UUID
    active_points: int
    muted_until: datetime | None
    sanctions: list[SanctionPublic]
