"""The per-community counters and the metrics catalogue."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlmodel import Field

from hearth_metrics.models import MetricsModel
from servicekit.types import UtcDateTime, UtcDatetime


class Counter(StrEnum):
    """The counters kept per community; each value is a column of community_counts."""

    joins = "joins"
    posts_submitted = "posts_submitted"
    posts_published = "posts_published"
    registrations = "registrations"


CATALOGUE: dict[Counter, str] = {
    Counter.joins: "People joining the community (a member who leaves and returns counts again).",
    Counter.posts_submitted: "Posts submitted to the community, whatever their review outcome.",
    Counter.posts_published: "Posts published in the community (after review or screening).",
    Counter.registrations: "Confirmed registrations for the community's activities.",
}
"""The metrics catalogue: every metric a community goal can be set on, with what it counts."""


class MetricDescription(MetricsModel):
    """One metric of the catalogue."""

    name: Counter
    description: str


def _count_field() -> Any:
    return Field(default=0, sa_column_kwargs={"server_default": "0"})


class CommunityCounts(MetricsModel, table=True):
    """Running totals of one community's facts, each bumped once per event (inbox-deduplicated)."""

    __tablename__ = "community_counts"

    community_id: uuid.UUID = Field(primary_key=True)
    joins: int = _count_field()
    posts_submitted: int = _count_field()
    posts_published: int = _count_field()
    registrations: int = _count_field()
    updated_at: datetime = Field(sa_type=UtcDateTime)


class CommunityCountsPublic(MetricsModel):
    """A community's counters; `updated_at` is null while nothing has been counted."""

    community_id: uuid.UUID
    joins: int = 0
    posts_submitted: int = 0
    posts_published: int = 0
    registrations: int = 0
    updated_at: UtcDatetime | None = None
