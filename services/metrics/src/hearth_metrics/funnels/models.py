"""Per-member funnel milestones and contributions, and the funnel's API models."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Index
from sqlmodel import Field

from hearth_metrics.models import MetricsModel
from servicekit.types import UtcDateTime, UtcDatetime


class MemberMilestone(MetricsModel, table=True):
    """When one person first reached each funnel stage in one community (null: not yet).

    Each column only ever moves earlier (`min` on every fact), so facts applied in any order,
    twice, or on several replicas end at the same row.
    """

    __tablename__ = "member_milestones"
    __table_args__ = (
        # Covering on PostgreSQL: a funnel is an index-only scan of one community's range.
        Index(
            "ix_member_milestones_visited",
            "community_id",
            "visited_at",
            postgresql_include=["joined_at", "contributed_at", "core_at"],
        ),
        Index("ix_member_milestones_joined", "community_id", "joined_at"),
    )

    community_id: uuid.UUID = Field(primary_key=True)
    user_id: uuid.UUID = Field(primary_key=True)
    visited_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    joined_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    join_channel: str | None = Field(default=None, max_length=80)
    contributed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    core_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class Contribution(MetricsModel, table=True):
    """One published post or comment of a member: the facts behind `contributed_at`/`core_at`."""

    __tablename__ = "contributions"
    __table_args__ = (Index("ix_contributions_member", "community_id", "user_id", "at"),)

    item_id: uuid.UUID = Field(primary_key=True)
    community_id: uuid.UUID
    user_id: uuid.UUID
    kind: str = Field(max_length=20)  # post | comment
    at: datetime = Field(sa_type=UtcDateTime)


class FunnelStage(MetricsModel):
    """One stage: how many of the cohort reached it, and the rate from the stage before."""

    stage: str
    count: int | None
    rate_from_previous: float | None
    rate_from_visitor: float | None
    suppressed: str | None = None


class Funnel(MetricsModel):
    """The funnel of the people first seen in a community in [since, until)."""

    community_id: uuid.UUID
    since: UtcDatetime
    until: UtcDatetime
    core_threshold: int
    core_window_days: int
    stages: list[FunnelStage]


class FunnelCell(MetricsModel, table=True):
    """How many people first seen on `visit_day` reached `stage` (and every stage before it)
    on `reach_day`, local days of the community: the rollup a funnel request sums.

    Kept in the same transaction as the milestone row it derives from (a row that moves
    earlier takes one person out of its old cells and into its new ones).
    """

    __tablename__ = "funnel_cells"

    community_id: uuid.UUID = Field(primary_key=True)
    visit_day: date = Field(primary_key=True)
    stage: str = Field(primary_key=True, max_length=12)
    reach_day: date = Field(primary_key=True)
    people: int = Field(default=0)
