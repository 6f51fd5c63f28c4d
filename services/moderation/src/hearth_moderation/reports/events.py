"""Events of reports and of hiding reported items (`<prefix>.moderation.report|item.*`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from servicekit.events import Event, event_type


@event_type("moderation.report.filed.v1")
class ReportFiled(Event):
    """A member reported an item; `weight` is theirs, `score` the item's weighted total now."""

    report_id: uuid.UUID
    entry_id: uuid.UUID
    community_id: uuid.UUID
    item_type: str
    item_id: uuid.UUID
    user_id: uuid.UUID | None = None  # the author (or the reported member)
    reporter_id: uuid.UUID
    reason: str
    weight: float
    score: float
    filed_at: datetime


@event_type("moderation.report.resolved.v1")
class ReportResolved(Event):
    """A moderator decided a report: `upheld` or `rejected`; members tells the reporter.

    The outcome feeds the reporter's weight for their next reports.
    """

    report_id: uuid.UUID
    entry_id: uuid.UUID
    community_id: uuid.UUID
    item_type: str
    item_id: uuid.UUID
    user_id: uuid.UUID | None = None
    reporter_id: uuid.UUID
    actor_id: uuid.UUID
    outcome: Literal["upheld", "rejected"]
    resolved_at: datetime


@event_type("moderation.item.hidden.v1")
class ItemHidden(Event):
    """A post or comment is to be hidden from members: its reports' weighted score reached the
    community's threshold (`cause` reports), or a moderator upheld them (`decision`).

    Content hides it (authors and staff still see it) until `item.restored`.
    """

    entry_id: uuid.UUID
    community_id: uuid.UUID
    item_type: Literal["post", "comment"]
    item_id: uuid.UUID
    user_id: uuid.UUID | None = None
    actor_id: uuid.UUID | None = None
    cause: Literal["reports", "decision"]
    score: float
    threshold: float
    reasons: list[str]
    hidden_at: datetime


@event_type("moderation.item.restored.v1")
class ItemRestored(Event):
    """A hidden post or comment is shown again: a moderator rejected its reports (or an appeal)."""

    entry_id: uuid.UUID
    community_id: uuid.UUID
    item_type: Literal["post", "comment"]
    item_id: uuid.UUID
    user_id: uuid.UUID | None = None
    actor_id: uuid.UUID | None = None
    restored_at: datetime
