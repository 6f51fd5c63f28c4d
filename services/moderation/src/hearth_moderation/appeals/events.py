"""Events of appeals (subjects `<prefix>.moderation.appeal.<fact>.v<N>`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from servicekit.events import Event, event_type


@event_type("moderation.appeal.filed.v1")
class AppealFiled(Event):
    """A member appealed a decision; `actor_id` is the moderator who made it (None: automatic)."""

    appeal_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    actor_id: uuid.UUID | None = None
    target_type: Literal["sanction", "decision"]
    target_id: uuid.UUID
    due_at: datetime
    filed_at: datetime


@event_type("moderation.appeal.decided.v1")
class AppealDecided(Event):
    """A moderator other than the one who acted decided an appeal: upheld, reduced or lifted.

    A reduced or lifted sanction is also announced as `sanction.lifted` (members restores what
    it took); a lifted queue decision shows its item again (`item.restored`). Members tells the
    appellant the outcome and `reason`.
    """

    appeal_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    actor_id: uuid.UUID
    target_type: Literal["sanction", "decision"]
    target_id: uuid.UUID
    outcome: Literal["upheld", "reduced", "lifted"]
    reason: str
    decided_at: datetime


@event_type("moderation.appeal.overdue.v1")
class AppealOverdue(Event):
    """An appeal waited past its SLA without a decision (an alert: once per appeal)."""

    appeal_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    actor_id: uuid.UUID | None = None
    due_at: datetime
    alerted_at: datetime
