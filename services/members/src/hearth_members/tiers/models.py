"""Tier tables: per-community rules and privileges, members' activity state and their tier."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import field_validator, model_validator
from sqlalchemy import JSON, Column
from sqlmodel import Field

from hearth_members.models import MembersModel
from servicekit.ids import utcnow
from servicekit.types import UtcDateTime


class Tier(StrEnum):
    """Earned tiers (分层): separate from permission roles."""

    core = "core"
    active = "active"
    regular = "regular"


KNOWN_PRIVILEGES = frozenset({"skip_first_review", "priority_registration", "early_access"})
DEFAULT_PRIVILEGES: dict[str, list[str]] = {"core": ["skip_first_review"], "active": []}


class TierRulesBase(MembersModel):
    """The thresholds that place a member in a tier, and what each tier grants."""

    core_min_points: int = Field(default=200, ge=0, le=10_000_000)
    active_min_points: int = Field(default=20, ge=0, le=10_000_000)
    # Active in this many days (metrics' member.active facts) counts as the `active` tier.
    active_within_days: int = Field(default=30, ge=1, le=365)


class TierRulesUpdate(TierRulesBase):
    """Body of PUT /communities/{id}/tier-rules."""

    privileges: dict[Tier, list[str]] = Field(default_factory=lambda: dict(DEFAULT_PRIVILEGES))

    @field_validator("privileges")
    @classmethod
    def _known(cls, value: dict[Tier, list[str]]) -> dict[Tier, list[str]]:
        for tier, names in value.items():
            unknown = sorted(set(names) - KNOWN_PRIVILEGES)
            if unknown:
                raise ValueError(f"{tier}: unknown privileges {', '.join(unknown)}")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> TierRulesUpdate:
        if self.core_min_points < self.active_min_points:
            raise ValueError("core_min_points must be at least active_min_points")
        return self


class TierRules(TierRulesBase, table=True):
    """A community's tier rules (absent: the defaults)."""

    __tablename__ = "tier_rules"

    community_id: uuid.UUID = Field(foreign_key="communities.id", primary_key=True)
    privileges: dict[str, list[str]] = Field(
        default_factory=lambda: dict(DEFAULT_PRIVILEGES), sa_column=Column(JSON, nullable=False)
    )
    updated_by: uuid.UUID | None = None
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class TierRulesPublic(TierRulesBase):
    """A community's effective tier rules."""

    community_id: uuid.UUID
    privileges: dict[str, list[str]]


class MemberActivity(MembersModel, table=True):
    """What metrics last said about a member's activity in a community (a local read model)."""

    __tablename__ = "member_activity"

    community_id: uuid.UUID = Field(primary_key=True)
    user_id: uuid.UUID = Field(primary_key=True)
    last_active_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    inactive_since: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # The metrics.member.inactive.v1 event behind inactive_since: the evidence a cleanup cites.
    inactive_event_id: uuid.UUID | None = None


class MemberTier(MembersModel, table=True):
    """A member's current earned tier in a community."""

    __tablename__ = "member_tiers"

    community_id: uuid.UUID = Field(primary_key=True)
    user_id: uuid.UUID = Field(primary_key=True)
    tier: Tier = Tier.regular
    changed_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class MemberTierPublic(MembersModel):
    """A member's tier and the privileges it grants."""

    community_id: uuid.UUID
    user_id: uuid.UUID
    tier: Tier
    privileges: list[str]
    changed_at: datetime | None


class RecomputeResult(MembersModel):
    """What a bulk recompute did."""

    community_id: uuid.UUID
    members: int
    changed: int
