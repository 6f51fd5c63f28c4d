"""Events of lucky draws: committed (list digest and seed commitment), revealed, completed."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

from servicekit.events import Event, event_type


class DrawnWinner(BaseModel):
    """One winner in a draw event."""

    prize_id: uuid.UUID
    registration_id: uuid.UUID
    user_id: uuid.UUID


@event_type("events.draw.committed.v1")
class DrawCommitted(Event):
    """A draw's eligible list is frozen and its seed committed to (SHA-256 of each published)."""

    draw_id: uuid.UUID
    activity_id: uuid.UUID
    community_id: uuid.UUID
    eligible_count: int
    eligible_sha256: str
    commitment: str
    committed_by: uuid.UUID
    committed_at: datetime


@event_type("events.draw.revealed.v1")
class DrawRevealed(Event):
    """A draw's seed is revealed and its winners follow from it (re-draws included)."""

    draw_id: uuid.UUID
    activity_id: uuid.UUID
    community_id: uuid.UUID
    seed: str
    winners: list[DrawnWinner]
    revealed_at: datetime


@event_type("events.draw.completed.v1")
class DrawCompleted(Event):
    """A draw is closed: its final winners (absent ones replaced) take their prizes."""

    draw_id: uuid.UUID
    activity_id: uuid.UUID
    community_id: uuid.UUID
    winners: list[DrawnWinner]
    completed_at: datetime
