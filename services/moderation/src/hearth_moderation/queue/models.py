"""The queue's table (one entry per case: a held item, an item's reports, an appeal) and API."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import JSON, Column, Index, String, Text, text
from sqlmodel import Field

from hearth_moderation.models import ModerationModel
from hearth_moderation.sanctions.models import SanctionLevel, Severity
from servicekit.ids import utcnow, uuid7
from servicekit.types import CleanInput, UtcDateTime


class EntryKind(StrEnum):
    """What waits for a moderator."""

    held = "held"  # screening held an item for approval
    report = "report"  # members reported an item (or a member)
    appeal = "appeal"  # a member appealed a decision


class EntryStatus(StrEnum):
    """Open (maybe claimed by someone) or decided."""

    open = "open"
    resolved = "resolved"


class QueueEntry(ModerationModel, table=True):
    """One case in a community's queue; at most one open entry per kind and item."""

    __tablename__ = "queue_entries"
    __table_args__ = (
        Index("ix_queue_entries_community_status", "community_id", "status", "id"),
        Index(
            "uq_queue_entries_open_item",
            "kind",
            "item_type",
            "item_id",
            unique=True,
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    community_id: uuid.UUID
    kind: EntryKind = Field(sa_type=String(16))
    item_type: str = Field(max_length=16)  # post, comment, member, sanction, entry
    item_id: uuid.UUID
    user_id: uuid.UUID | None = None  # the member concerned: the author, the reported member
    ref_id: uuid.UUID | None = None  # the screening or appeal behind it
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: EntryStatus = Field(default=EntryStatus.open, sa_type=String(16))
    assignee_id: uuid.UUID | None = None
    claimed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # Reports: the weighted score and whether the item is hidden because of it.
    score: float = 0.0
    hidden: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})
    opened_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    due_at: datetime = Field(sa_type=UtcDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    decision: str | None = Field(default=None, max_length=16)
    decided_by: uuid.UUID | None = None
    note: str | None = Field(default=None, sa_type=Text)  # for moderators
    author_reason: str | None = Field(default=None, max_length=1000)  # what the author is told
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class QueueEntryPublic(ModerationModel):
    """An entry as moderators see it: with its SLA age and, for reports, the score's make-up."""

    id: uuid.UUID
    community_id: uuid.UUID
    kind: EntryKind
    item_type: str
    item_id: uuid.UUID
    user_id: uuid.UUID | None
    ref_id: uuid.UUID | None
    reasons: list[str]
    status: EntryStatus
    assignee_id: uuid.UUID | None
    claimed_at: datetime | None
    score: float
    hidden: bool
    opened_at: datetime
    due_at: datetime
    age_seconds: float = 0.0
    overdue: bool = False
    resolved_at: datetime | None
    decision: str | None
    decided_by: uuid.UUID | None
    note: str | None
    author_reason: str | None
    score_detail: list[dict[str, Any]] = []  # who counted how much, and why (reports)


class Decision(StrEnum):
    """A moderator's call: uphold (the hold, the reports, the decision appealed) or dismiss."""

    uphold = "uphold"
    dismiss = "dismiss"


class DecisionRequest(CleanInput):
    """Body of POST /queue/{id}/decision; `sanction` also sanctions the author on uphold."""

    model_config = ConfigDict(extra="forbid")

    decision: Decision
    note: str | None = PydanticField(default=None, max_length=4000)
    author_reason: str | None = PydanticField(default=None, max_length=1000)
    sanction: SanctionLevel | None = None
    severity: Severity | None = None


class BulkDecisionRequest(DecisionRequest):
    """Body of POST /communities/{id}/queue/decisions: one decision for many entries."""

    entry_ids: list[uuid.UUID] = PydanticField(min_length=1, max_length=100)


class BulkDecisionResult(ModerationModel):
    """Per entry: decided, or the problem that stopped it."""

    decided: list[uuid.UUID]
    failed: dict[str, str]


class AssignRequest(CleanInput):
    """Body of POST /queue/{id}/assign: who handles it (null: back to the pool)."""

    model_config = ConfigDict(extra="forbid")

    assignee_id: uuid.UUID | None


QueueFilter = Literal["open", "resolved"]
