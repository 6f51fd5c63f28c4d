"""Events of community goals (subjects `<prefix>.members.goal.<fact>.v<N>`)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from servicekit.events import Event, event_type


@event_type("members.goal.set.v1")
class GoalSet(Event):
    """A community goal was set: a catalogue metric of metrics, its target and deadline.

    Metrics keeps a read model of goals from it and reports their progress (current value of
    the metric against the target); members keeps showing goals from its own table.
    """

    goal_id: uuid.UUID
    community_id: uuid.UUID
    metric: str
    target: float
    deadline: date
    owner_id: uuid.UUID
    set_at: datetime


@event_type("members.goal.removed.v1")
class GoalRemoved(Event):
    """A community goal was removed."""

    goal_id: uuid.UUID
    community_id: uuid.UUID
    removed_at: datetime
