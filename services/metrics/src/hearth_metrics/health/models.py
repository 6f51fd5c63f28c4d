"""The health score's API models."""

from __future__ import annotations

import uuid

from hearth_metrics.models import MetricsModel
from servicekit.types import UtcDatetime


class HealthPart(MetricsModel):
    """One part of the score: its inputs, its 0-1 value (null: no data) and its weight."""

    name: str
    value: float | None
    weight: float
    inputs: dict[str, float | int | None]
    explanation: str


class HealthScore(MetricsModel):
    """0-100: the weighted mean of the parts that have data (weights renormalised)."""

    community_id: uuid.UUID
    since: UtcDatetime
    until: UtcDatetime
    score: float | None
    parts: list[HealthPart]
    suppressed: str | None = None
