"""Appeal tables (the appeal, its dialogue) and their API models."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlmodel import Field

from hearth_moderation.models import ModerationModel
from servicekit.ids import utcnow, uuid7
from servicekit.types import CleanInput, UtcDateTime


class AppealTarget(StrEnum):
    """What is appealed: a sanction (warning, mute, removal, ban) or a queue decision."""

    sanction = "sanction"
    decision = "decision"  # a queue entry upheld: a rejected post, reports upheld


class AppealStatus(StrEnum):
    """Open until a moderator decides it."""

    open = "open"
    decided = "decided"


class AppealOutcome(StrEnum):
    """The decision stands, is lessened, or is undone."""

    upheld = "upheld"
    reduced = "reduced"
    lifted = "lifted"


class Appeal(ModerationModel, table=True):
    """A member's appeal of one decision; one per decision."""

    __tablename__ = "appeals"
    __table_args__ = (
        UniqueConstraint("target_type", "target_id", name="uq_appeal_target"),
        Index("ix_appeals_status_due_at", "status", "due_at"),
        Index("ix_appeals_community_id_id", "community_id", "id"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    community_id: uuid.UUID
    user_id: uuid.UUID  # the appellant: the member the decision concerns
    target_type: AppealTarget = Field(sa_type=String(16))
    target_id: uuid.UUID
    original_actor_id: uuid.UUID | None = None  # who decided; they may not decide the appeal
    entry_id: uuid.UUID  # the appeal's queue entry
    text: str = Field(sa_type=Text)
    status: AppealStatus = Field(default=AppealStatus.open, sa_type=String(16))
    outcome: AppealOutcome | None = Field(default=None, sa_type=String(16))
    decision_reason: str | None = Field(default=None, max_length=1000)
    decided_by: uuid.UUID | None = None
    decided_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    due_at: datetime = Field(sa_type=UtcDateTime)
    overdue_at: datetime | None = Field(default=None, sa_type=UtcDateTime)  # SLA alert sent


class AppealMessage(ModerationModel, table=True):
    """One message of an appeal's dialogue between the member and the moderators."""

    __tablename__ = "appeal_messages"
    __table_args__ = (Index("ix_appeal_messages_appeal_id_id", "appeal_id", "id"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    appeal_id: uuid.UUID
    author_id: uuid.UUID
    from_moderator: bool
    body: str = Field(sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class AppealCreate(CleanInput):
    """Body of POST /sanctions/{id}/appeals and /queue/{id}/appeals: why it is wrong."""

    model_config = ConfigDict(extra="forbid")

    text: str = PydanticField(min_length=1, max_length=4000)


class AppealMessageCreate(CleanInput):
    """Body of POST /appeals/{id}/messages."""

    model_config = ConfigDict(extra="forbid")

    body: str = PydanticField(min_length=1, max_length=4000)


class AppealDecisionRequest(CleanInput):
    """Body of POST /appeals/{id}/decision; `points`/`muted_until` say how much is reduced."""

    model_config = ConfigDict(extra="forbid")

    outcome: AppealOutcome
    reason: str = PydanticField(min_length=1, max_length=1000)
    points: int | None = PydanticField(default=None, ge=0, le=100)
    muted_until: datetime | None = None


class AppealMessagePublic(ModerationModel):
    """One message of the dialogue."""

    id: uuid.UUID
    author_id: uuid.UUID
    from_moderator: bool
    body: str
    created_at: datetime


class AppealPublic(ModerationModel):
    """An appeal as the appellant and the community's team see it, with its dialogue."""

    id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    target_type: AppealTarget
    target_id: uuid.UUID
    original_actor_id: uuid.UUID | None
    entry_id: uuid.UUID
    text: str
    status: AppealStatus
    outcome: AppealOutcome | None
    decision_reason: str | None
    decided_by: uuid.UUID | None
    decided_at: datetime | None
    created_at: datetime
    due_at: datetime
    overdue_at: datetime | None
    messages: list[AppealMessagePublic] = []
