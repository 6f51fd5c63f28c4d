"""Events moderation publishes (subjects `<prefix>.moderation.<entity>.<fact>.v<N>`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from servicekit.events import Event, event_type


@event_type("moderation.screening.completed.v1")
class ScreeningCompleted(Event):
    """Automatic screening decided on a target: `approved`, or `held` for review with reasons."""

    screening_id: uuid.UUID
    target_type: str
    target_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID | None = None
    decision: str
    reasons: list[str]
    screened_at: datetime


@event_type("moderation.sanction.applied.v1")
class SanctionApplied(Event):
    """A sanction on the ladder (warning → mute → removal) was applied to a community member.

    `evidence_ref` points at moderation's record (report, screening, decision) that justifies it;
    members keeps it on the membership so that a removal is never silent or unexplained.
    """

    sanction_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    level: Literal["warning", "mute", "removal"]
    reason: str
    evidence_ref: str
    muted_until: datetime | None = None
    applied_at: datetime
