"""Suggestion box (意见箱): ideas, one vote per member, a status workflow, official replies."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import field_validator, model_validator
from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlmodel import Field

from hearth_content.models import ContentModel
from servicekit.ids import utcnow, uuid7
from servicekit.types import UtcDateTime

TITLE_MAX = 200
BODY_MAX = 10_000
REASON_MAX = 2000
REPLY_MAX = 10_000


class SuggestionStatus(StrEnum):
    """Where an idea stands: new → under_review → accepted → done, or declined, or merged."""

    new = "new"
    under_review = "under_review"
    accepted = "accepted"
    done = "done"
    declined = "declined"
    merged = "merged"


# The workflow: each status and the statuses it may move to (done, declined, merged are final).
TRANSITIONS: dict[SuggestionStatus, tuple[SuggestionStatus, ...]] = {
    SuggestionStatus.new: (
        SuggestionStatus.under_review,
        SuggestionStatus.declined,
        SuggestionStatus.merged,
    ),
    SuggestionStatus.under_review: (
        SuggestionStatus.accepted,
        SuggestionStatus.declined,
        SuggestionStatus.merged,
    ),
    SuggestionStatus.accepted: (SuggestionStatus.done,),
    SuggestionStatus.done: (),
    SuggestionStatus.declined: (),
    SuggestionStatus.merged: (),
}
# Ideas that still take votes (and may receive a merged idea's votes).
OPEN_STATUSES = (SuggestionStatus.new, SuggestionStatus.under_review, SuggestionStatus.accepted)


def _text(value: str, what: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError(f"{what} must not be blank")
    return value


class SuggestionCreate(ContentModel):
    """Body of POST /communities/{community_id}/suggestions."""

    title: str = Field(min_length=1, max_length=TITLE_MAX)
    body: str = Field(default="", max_length=BODY_MAX)

    @field_validator("title")
    @classmethod
    def _strip(cls, value: str) -> str:
        return _text(value, "title")


class Suggestion(ContentModel, table=True):
    """An idea in a community's suggestion box."""

    __tablename__ = "suggestions"
    __table_args__ = (Index("ix_suggestions_community_id_id", "community_id", "id"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    community_id: uuid.UUID
    author_id: uuid.UUID
    title: str = Field(max_length=TITLE_MAX)
    body: str = Field(default="", sa_type=Text)
    status: SuggestionStatus = Field(default=SuggestionStatus.new, sa_type=String(16))
    # Why it was declined (shown to its author and voters).
    reason: str | None = Field(default=None, sa_type=Text)
    merged_into_id: uuid.UUID | None = None
    # Distinct voters (a merged idea's voters counted once on the idea they were carried to).
    vote_count: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    status_changed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class SuggestionVote(ContentModel, table=True):
    """One member's vote for one idea (the unique constraint keeps it one)."""

    __tablename__ = "suggestion_votes"
    __table_args__ = (
        UniqueConstraint("suggestion_id", "voter_id", name="uq_suggestion_votes_voter"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    suggestion_id: uuid.UUID
    voter_id: uuid.UUID
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    # The idea this vote was first cast on, when it was carried over by a merge.
    carried_from_id: uuid.UUID | None = None


class SuggestionReply(ContentModel, table=True):
    """An official reply of the community's team to an idea."""

    __tablename__ = "suggestion_replies"
    __table_args__ = (Index("ix_suggestion_replies_suggestion_id_id", "suggestion_id", "id"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    suggestion_id: uuid.UUID
    author_id: uuid.UUID
    body: str = Field(sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class StatusChangeRequest(ContentModel):
    """Body of POST /suggestions/{suggestion_id}/status (the community's team)."""

    status: SuggestionStatus
    reason: str | None = Field(default=None, max_length=REASON_MAX)
    merged_into_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _needs(self) -> StatusChangeRequest:
        if self.reason is not None:
            self.reason = self.reason.strip() or None
        if self.status == SuggestionStatus.declined and not self.reason:
            raise ValueError("declining needs a reason")
        if (self.status == SuggestionStatus.merged) != (self.merged_into_id is not None):
            raise ValueError("merged_into_id goes with status merged, and only with it")
        return self


class SuggestionReplyCreate(ContentModel):
    """Body of POST /suggestions/{suggestion_id}/replies."""

    body: str = Field(min_length=1, max_length=REPLY_MAX)

    @field_validator("body")
    @classmethod
    def _strip(cls, value: str) -> str:
        return _text(value, "body")


class SuggestionPublic(ContentModel):
    """An idea as clients see it."""

    id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID
    title: str
    body: str
    status: SuggestionStatus
    reason: str | None
    merged_into_id: uuid.UUID | None
    vote_count: int
    created_at: datetime
    status_changed_at: datetime | None
    # Whether the caller has voted for it.
    voted: bool = False


class SuggestionReplyPublic(ContentModel):
    """An official reply."""

    id: uuid.UUID
    suggestion_id: uuid.UUID
    author_id: uuid.UUID
    body: str
    created_at: datetime
