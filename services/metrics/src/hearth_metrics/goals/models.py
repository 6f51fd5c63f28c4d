"""The read model of members' community goals, and the progress clients read."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlmodel import Field

from hearth_metrics.models import MetricsModel
from servicekit.types import UtcDateTime


class CommunityGoal(MetricsModel, table=True):
    """A goal as members published it (goal.set.v1); `removed_at` once removed (goal.removed.v1)."""

    __tablename__ = "community_goals"

    goal_id: uuid.UUID = Field(primary_key=True)
    community_id: uuid.UUID = Field(index=True)
    metric: str | None = Field(default=None, max_length=120)  # null: only the removal arrived
    target: float | None = None
    deadline: date | None = None
    set_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    removed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class GoalProgress(MetricsModel):
    """A goal against the current value of its metric (null + a reason under the floor)."""

    goal_id: uuid.UUID
    metric: str
    target: float
    deadline: date
    current: float | None
    share: float | None  # current / target, not capped: 1.2 means 120 %
    achieved: bool | None
    suppressed: str | None = None


class CommunityGoals(MetricsModel):
    """A community's goals and their progress."""

    community_id: uuid.UUID
    goals: list[GoalProgress]
