"""Q&A (提问答疑): questions on an activity, upvotes, and the host's Q&A policy."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import field_validator
from sqlalchemy import JSON, Column, Index, String, Text
from sqlmodel import Field

from hearth_events.models import EventsModel
from servicekit.ids import utcnow, uuid7
from servicekit.types import UtcDateTime, UtcDatetime


class QuestionVisibility(StrEnum):
    """Whether members see a question: moderation may hold or hide it (target_type question)."""

    visible = "visible"
    held = "held"  # screening held it for a moderator: only its author and moderation see it
    hidden = "hidden"  # rejected in moderation's queue: only its author (with the reason) and
    # moderation see it


class QuestionCreate(EventsModel):
    """Body of POST /activities/{id}/questions."""

    text: str = Field(min_length=1, max_length=1000)
    anonymous: bool = False

    @field_validator("text")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("text must not be blank")
        return value


class QuestionUpdate(EventsModel):
    """Body of PATCH /questions/{id} (organisers): mark answered, pin or unpin."""

    answered: bool | None = None
    pinned: bool | None = None


class Question(EventsModel, table=True):
    """A question asked at an activity; `upvotes` is kept in step with `question_votes`."""

    __tablename__ = "questions"
    __table_args__ = (Index("ix_questions_activity", "activity_id", "asked_at"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    activity_id: uuid.UUID = Field(foreign_key="activities.id")
    community_id: uuid.UUID
    author_id: uuid.UUID
    anonymous: bool = False
    text: str = Field(max_length=1000)
    visibility: QuestionVisibility = Field(
        default=QuestionVisibility.visible,
        sa_type=String(20),
        sa_column_kwargs={"server_default": "visible"},
    )
    pinned: bool = False
    upvotes: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    answered_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    answered_by: uuid.UUID | None = None
    asked_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    # Moderation's screening (questions/moderation.py): why it is held, the text as asked when
    # censored (moderation's evidence), the queue's rejection reason and deciding entry.
    hold_reasons: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    original_text: str | None = Field(default=None, sa_type=Text)
    screening_id: uuid.UUID | None = None
    rejection_reason: str | None = Field(default=None, sa_type=Text)
    moderation_case_id: uuid.UUID | None = Field(default=None, index=True)


class QuestionVote(EventsModel, table=True):
    """One member's upvote of one question: the primary key makes it one per member."""

    __tablename__ = "question_votes"

    question_id: uuid.UUID = Field(foreign_key="questions.id", primary_key=True)
    user_id: uuid.UUID = Field(primary_key=True)
    voted_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class QaPolicyUpdate(EventsModel):
    """Body of PUT /activities/{id}/qa-policy."""

    anonymous_allowed: bool


class QaPolicy(EventsModel, table=True):
    """An activity's Q&A policy; without a row questions are not anonymous."""

    __tablename__ = "qa_policies"

    activity_id: uuid.UUID = Field(foreign_key="activities.id", primary_key=True)
    anonymous_allowed: bool = False
    updated_by: uuid.UUID
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class QaPolicyPublic(EventsModel):
    """The Q&A policy in force."""

    activity_id: uuid.UUID
    anonymous_allowed: bool


class QuestionPublic(EventsModel):
    """A question as the caller may see it (`author_id` null when anonymous to them)."""

    id: uuid.UUID
    activity_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID | None
    anonymous: bool
    text: str
    visibility: QuestionVisibility
    pinned: bool
    upvotes: int
    voted: bool
    answered: bool
    answered_at: UtcDatetime | None
    asked_at: UtcDatetime
    # Shown to its author and moderation only (a visible question has none).
    hold_reasons: list[str] = []
    rejection_reason: str | None = None
