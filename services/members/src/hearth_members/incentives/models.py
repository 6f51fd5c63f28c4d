"""Incentive tables: rules, the points ledger, balances, badges (and titles), perks."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import field_validator
from sqlalchemy import CheckConstraint, Index, UniqueConstraint
from sqlmodel import Field

from hearth_members.models import MembersModel
from servicekit.ids import utcnow, uuid7
from servicekit.types import INT32_MAX, UtcDateTime

# Source event kinds (CloudEvents type without `hearth.` and version, so a `.v2` keeps its rule)
# and the points they give when a community has not set its own.
DEFAULT_POINT_RULES: dict[str, int] = {
    "content.post.published": 5,
    "content.comment.created": 1,
    "events.attendance.checked_in": 10,
    "content.suggestion.accepted": 20,
    "moderation.sanction.applied": -20,
    "events.attendance.no_show": 0,  # no penalty unless a community sets one
}
MAX_RULE_POINTS = 10_000


class IncentiveSettings(MembersModel, table=True):
    """Per-community incentive switches (privacy: employee communities may hide rankings)."""

    __tablename__ = "incentive_settings"

    community_id: uuid.UUID = Field(foreign_key="communities.id", primary_key=True)
    leaderboards_enabled: bool = True
    updated_by: uuid.UUID | None = None
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class IncentiveSettingsUpdate(MembersModel):
    """Body of PUT /communities/{id}/incentive-settings."""

    leaderboards_enabled: bool


class IncentiveSettingsPublic(MembersModel):
    """A community's incentive settings."""

    community_id: uuid.UUID
    leaderboards_enabled: bool
    updated_at: datetime


class PointRule(MembersModel, table=True):
    """A community's override of how many points one kind of source event gives."""

    __tablename__ = "point_rules"
    __table_args__ = (UniqueConstraint("community_id", "source", name="uq_point_rule"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    community_id: uuid.UUID = Field(foreign_key="communities.id", index=True)
    source: str = Field(max_length=120)
    points: int
    updated_by: uuid.UUID | None = None
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class PointRulesUpdate(MembersModel):
    """Body of PUT /communities/{id}/point-rules: overrides by source (others keep defaults)."""

    rules: dict[str, int]

    @field_validator("rules")
    @classmethod
    def _known_sources(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - set(DEFAULT_POINT_RULES))
        if unknown:
            raise ValueError(f"unknown point sources: {', '.join(unknown)}")
        for source, points in value.items():
            if abs(points) > MAX_RULE_POINTS:
                raise ValueError(f"{source}: points must be within ±{MAX_RULE_POINTS}")
        return value


class PointRulesPublic(MembersModel):
    """The effective rules of a community (defaults merged with its overrides)."""

    community_id: uuid.UUID
    rules: dict[str, int]
    overridden: list[str]


class EntryKind(StrEnum):
    """Why a ledger entry exists."""

    award = "award"  # from a source event and the community's rule
    adjustment = "adjustment"  # set by hand by a community admin or staff
    redemption = "redemption"  # points spent on a perk


class PointEntry(MembersModel, table=True):
    """One line of the ledger; `points` is what was applied to the balance (never below 0)."""

    __tablename__ = "point_ledger"
    __table_args__ = (
        # Idempotency per source event: the same fact twice makes one entry. NULL source ids
        # (adjustments, redemptions) never collide, on PostgreSQL and SQLite alike.
        UniqueConstraint("community_id", "user_id", "source_event_id", name="uq_point_source"),
        Index("ix_point_ledger_window", "community_id", "created_at"),
        Index("ix_point_ledger_member", "community_id", "user_id", "id"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    community_id: uuid.UUID = Field(foreign_key="communities.id")
    user_id: uuid.UUID
    kind: EntryKind
    points: int
    reason: str = Field(max_length=300)
    source_event_id: uuid.UUID | None = None
    source_event_type: str | None = Field(default=None, max_length=200)
    actor_id: uuid.UUID | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class PointEntryPublic(MembersModel):
    """A ledger entry as clients see it."""

    id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    kind: EntryKind
    points: int
    reason: str
    source_event_id: uuid.UUID | None
    source_event_type: str | None
    created_at: datetime


class PointAdjustmentCreate(MembersModel):
    """Body of POST /communities/{id}/points/adjustments (a manual award or deduction)."""

    user_id: uuid.UUID
    points: int = Field(ge=-MAX_RULE_POINTS, le=MAX_RULE_POINTS)
    reason: str = Field(min_length=1, max_length=300)

    @field_validator("points")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("points must not be zero")
        return value


class PointBalance(MembersModel, table=True):
    """A member's spendable points in a community; redemptions decrement it conditionally."""

    __tablename__ = "point_balances"
    __table_args__ = (CheckConstraint("balance >= 0", name="ck_point_balance_non_negative"),)

    community_id: uuid.UUID = Field(foreign_key="communities.id", primary_key=True)
    user_id: uuid.UUID = Field(primary_key=True)
    balance: int = 0
    earned: int = 0  # lifetime net of awards and adjustments (redemptions do not lower it)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ActivityCount(MembersModel, table=True):
    """How many facts of one source a member has produced (feeds automatic badges)."""

    __tablename__ = "incentive_activity"

    community_id: uuid.UUID = Field(primary_key=True)
    user_id: uuid.UUID = Field(primary_key=True)
    source: str = Field(primary_key=True, max_length=120)
    count: int = 0


class BadgeKind(StrEnum):
    """Badges collect; titles (荣誉称号) are honours shown beside a member's name."""

    badge = "badge"
    title = "title"  # type: ignore[assignment]  # shadows str.title, on purpose


class BadgeBase(MembersModel):
    """Fields a community admin sets on a badge or title."""

    name: str = Field(min_length=1, max_length=80)
    kind: BadgeKind = BadgeKind.badge
    description: str = Field(default="", max_length=1000)
    icon_url: str | None = Field(default=None, max_length=500)
    # Automatic award: when a member's count of `rule_source` facts reaches `rule_threshold`.
    rule_source: str | None = Field(default=None, max_length=120)
    rule_threshold: int | None = Field(default=None, ge=1, le=1_000_000)

    @field_validator("rule_source")
    @classmethod
    def _known_source(cls, value: str | None) -> str | None:
        if value is not None and value not in DEFAULT_POINT_RULES:
            raise ValueError(f"unknown source {value!r}")
        return value


class BadgeCreate(BadgeBase):
    """Body of POST /communities/{id}/badges."""


class Badge(BadgeBase, table=True):
    """A badge or title defined by a community."""

    __tablename__ = "badges"
    __table_args__ = (UniqueConstraint("community_id", "name", name="uq_badge_name"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    community_id: uuid.UUID = Field(foreign_key="communities.id", index=True)
    created_by: uuid.UUID
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class BadgePublic(BadgeBase):
    """A badge as clients see it."""

    id: uuid.UUID
    community_id: uuid.UUID
    created_at: datetime


class BadgeAward(MembersModel, table=True):
    """A member holds (or held, when revoked) a badge; one row per badge and member."""

    __tablename__ = "badge_awards"
    __table_args__ = (UniqueConstraint("badge_id", "user_id", name="uq_badge_award"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    badge_id: uuid.UUID = Field(foreign_key="badges.id", index=True)
    community_id: uuid.UUID = Field(index=True)
    user_id: uuid.UUID = Field(index=True)
    granted_by: uuid.UUID | None = None  # None: awarded automatically by the badge's rule
    granted_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    reason: str = Field(default="", max_length=300)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    revoked_by: uuid.UUID | None = None
    revoke_reason: str | None = Field(default=None, max_length=300)


class BadgeGrantCreate(MembersModel):
    """Body of POST /communities/{id}/badges/{badge_id}/grants."""

    user_id: uuid.UUID
    reason: str = Field(default="", max_length=300)


class BadgeRevokeRequest(MembersModel):
    """Body of POST .../grants/{user_id}/revoke."""

    reason: str = Field(min_length=1, max_length=300)


class BadgeAwardPublic(MembersModel):
    """A member's badge as clients see it."""

    badge_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    name: str
    kind: BadgeKind
    automatic: bool
    granted_at: datetime
    revoked_at: datetime | None


class PerkBase(MembersModel):
    """Fields of a perk (实物奖品, 优先参与权, ...) redeemable against points."""

    name: str = Field(min_length=1, max_length=120)
    description: str = Field(default="", max_length=2000)
    cost: int = Field(ge=1, le=10_000_000)
    stock: int | None = Field(default=None, ge=0, le=INT32_MAX)  # None: unlimited


class PerkCreate(PerkBase):
    """Body of POST /communities/{id}/perks."""


class PerkUpdate(MembersModel):
    """Body of PATCH /communities/{id}/perks/{perk_id}: unset fields stay."""

    name: str | None = Field(default=None, min_length=1, max_length=120)
    description: str | None = Field(default=None, max_length=2000)
    cost: int | None = Field(default=None, ge=1, le=10_000_000)
    stock: int | None = Field(default=None, ge=0, le=INT32_MAX)
    unlimited: bool = False  # true: remove the stock limit
    active: bool | None = None


class Perk(PerkBase, table=True):
    """A perk offered by a community."""

    __tablename__ = "perks"
    __table_args__ = (CheckConstraint("stock IS NULL OR stock >= 0", name="ck_perk_stock"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    community_id: uuid.UUID = Field(foreign_key="communities.id", index=True)
    active: bool = True
    created_by: uuid.UUID
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class PerkPublic(PerkBase):
    """A perk as clients see it."""

    id: uuid.UUID
    community_id: uuid.UUID
    active: bool
    created_at: datetime


class PerkRedemption(MembersModel, table=True):
    """A member spent points on a perk."""

    __tablename__ = "perk_redemptions"

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    perk_id: uuid.UUID = Field(foreign_key="perks.id", index=True)
    community_id: uuid.UUID = Field(index=True)
    user_id: uuid.UUID = Field(index=True)
    cost: int
    entry_id: uuid.UUID
    redeemed_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class PerkRedemptionPublic(MembersModel):
    """A redemption as clients see it, with the balance left."""

    id: uuid.UUID
    perk_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    cost: int
    balance: int
    redeemed_at: datetime


class LeaderboardRow(MembersModel):
    """One place on a leaderboard."""

    rank: int
    user_id: uuid.UUID
    points: int


class Leaderboard(MembersModel):
    """The top members of a window (7d, 30d, all)."""

    community_id: uuid.UUID
    window: str
    since: datetime | None
    items: list[LeaderboardRow]


class MemberIncentives(MembersModel):
    """A member's standing in a community: balance, badges, titles, tier and (maybe) rank."""

    community_id: uuid.UUID
    user_id: uuid.UUID
    balance: int
    earned: int
    tier: str
    badges: list[BadgeAwardPublic]
    titles: list[BadgeAwardPublic]
    rank: int | None  # None when the community switched rankings off (privacy)
