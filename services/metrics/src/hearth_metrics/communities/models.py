"""Read models of communities and memberships (members' snapshots) and the metrics policy.

Members' community snapshot carries the kind (`internal` marks an employee community, where the
privacy floor applies) but no time zone and no inactivity threshold: those are metrics' own,
per community, in `CommunityPolicy` (defaults from `MetricsSettings` until someone sets them).
Role and status are plain strings: members may add values, and a tolerant reader stores them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import field_validator
from sqlalchemy import JSON, Column
from sqlmodel import Field

from hearth_metrics.models import MetricsModel
from servicekit.types import UtcDateTime, UtcDatetime

INTERNAL_KIND = "internal"
"""Members' community kind for employee communities (the privacy floor applies to them)."""

PUBLISHABLE = ("leaderboard", "activity", "retention", "goals")
"""What a community may publish to its own members (everything else is for owners and admins)."""


class Community(MetricsModel, table=True):
    """Read model: a community as members announced it (hearth.members.community.snapshot.v1)."""

    __tablename__ = "communities"

    community_id: uuid.UUID = Field(primary_key=True)
    name: str | None = Field(default=None, max_length=200)
    kind: str | None = Field(default=None, max_length=40)
    visibility: str | None = Field(default=None, max_length=20)
    owner_id: uuid.UUID | None = None
    archived: bool = False
    created_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # The snapshot's version: only a newer snapshot replaces the row (servicekit.readmodel).
    version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class Membership(MetricsModel, table=True):
    """Read model: one person's place in one community (hearth.members.membership.snapshot.v1)."""

    __tablename__ = "memberships"

    community_id: uuid.UUID = Field(primary_key=True)
    user_id: uuid.UUID = Field(primary_key=True, index=True)
    membership_id: uuid.UUID | None = None
    role: str = Field(default="member", max_length=40)
    status: str | None = Field(default=None, max_length=40)
    tier: str | None = Field(default=None, max_length=40)
    joined_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class CommunityPolicy(MetricsModel, table=True):
    """Metrics' own settings of one community; a null column means "the service default"."""

    __tablename__ = "community_policies"

    community_id: uuid.UUID = Field(primary_key=True)
    time_zone: str | None = Field(default=None, max_length=64)
    inactive_days: int | None = None
    k_floor: int | None = None
    rankings_enabled: bool = False
    published: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    updated_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


def _zone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


class CommunityPolicyUpdate(MetricsModel):
    """A partial change of a community's metrics policy (every field optional)."""

    time_zone: str | None = Field(default=None, max_length=64)
    inactive_days: int | None = Field(default=None, ge=1, le=365)
    k_floor: int | None = Field(default=None, ge=2, le=1000)
    rankings_enabled: bool | None = None
    published: list[str] | None = Field(default=None, max_length=len(PUBLISHABLE))

    _zone = field_validator("time_zone")(_zone)

    @field_validator("published")
    @classmethod
    def _publishable(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and (bad := sorted(set(value) - set(PUBLISHABLE))):
            raise ValueError(f"not publishable: {bad}; choose from {list(PUBLISHABLE)}")
        return sorted(set(value)) if value is not None else None


class CommunityPolicyPublic(MetricsModel):
    """A community's effective metrics policy (defaults filled in) and what metrics knows of it."""

    community_id: uuid.UUID
    kind: str | None
    internal: bool
    time_zone: str
    inactive_days: int
    k_floor: int
    rankings_enabled: bool
    published: list[str]
    updated_at: UtcDatetime | None = None
