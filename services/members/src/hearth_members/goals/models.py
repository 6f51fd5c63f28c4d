"""Community goals, their measurements, and their request/response models."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Literal

from sqlmodel import Field

from hearth_members.models import MembersModel
from servicekit.ids import utcnow, uuid7
from servicekit.types import UtcDateTime


class Goal(MembersModel, table=True):
    """A measurable community goal; progress comes from metrics' measurements, not stored here."""

    __tablename__ = "goals"

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    community_id: uuid.UUID = Field(foreign_key="communities.id", index=True)
    metric: str = Field(max_length=120)
    target: float
    deadline: date
    owner_id: uuid.UUID = Field(index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


# Metrics' catalogue (GET /api/metrics/catalogue): public, stable names that metrics adds to and
# never renames. Members keeps its own copy instead of calling metrics (no synchronous calls
# between contexts); the end-to-end test checks that the two lists agree.
GoalMetric = Literal["joins", "posts_submitted", "posts_published", "registrations"]


class GoalCreate(MembersModel):
    """Body of POST /communities/{id}/goals."""

    metric: GoalMetric
    target: float = Field(gt=0)
    deadline: date
    owner_id: uuid.UUID | None = None


class GoalStatus(StrEnum):
    """Where a goal stands against its latest measurement."""

    no_data = "no_data"  # metrics has not measured the metric in this community yet
    on_track = "on_track"  # below target, deadline not passed
    achieved = "achieved"  # current >= target
    missed = "missed"  # deadline passed and current < target


class GoalPublic(MembersModel):
    """A goal with its latest measurement from metrics (see README: goals)."""

    id: uuid.UUID
    community_id: uuid.UUID
    metric: str
    target: float
    deadline: date
    owner_id: uuid.UUID
    created_at: datetime
    current: float | None = None
    progress: float | None = None  # current / target, not capped: 1.2 means 120 %
    measured_at: datetime | None = None
    status: GoalStatus = GoalStatus.no_data


class CommunityMeasurement(MembersModel, table=True):
    """Read model of metrics' community.measured facts: the newest value per community metric."""

    __tablename__ = "community_measurements"

    # No foreign key to communities: a read model takes what its producer says, in any order.
    community_id: uuid.UUID = Field(primary_key=True)
    metric: str = Field(primary_key=True, max_length=120)
    value: float
    measured_at: datetime = Field(sa_type=UtcDateTime)
