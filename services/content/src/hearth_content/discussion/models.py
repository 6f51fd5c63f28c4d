"""Discussion tables: comments (threaded, soft-deleted) and reactions (one per kind per member)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import field_validator
from sqlalchemy import JSON, Column, Index, String, Text, UniqueConstraint
from sqlmodel import Field

from hearth_content.models import ContentModel
from servicekit.ids import utcnow, uuid7
from servicekit.types import UtcDateTime

COMMENT_MAX = 10_000
# Replies to replies nest this deep at most; a reply to the deepest level is refused (422),
# because an unbounded tree is unreadable on a phone and costly to render.
MAX_DEPTH = 5


class ReactionKind(StrEnum):
    """The fixed set of reactions a member may leave on a post."""

    like = "like"
    thanks = "thanks"
    insightful = "insightful"
    celebrate = "celebrate"


class CommentStatus(StrEnum):
    """Where a comment stands after moderation's screening."""

    visible = "visible"  # shown at once; stays shown unless the verdict holds it
    held = "held"  # the verdict was block/require_approval: its author and staff see it


class Comment(ContentModel, table=True):
    """A comment on a post, or a reply to another comment (`parent_id`)."""

    __tablename__ = "comments"
    __table_args__ = (
        Index("ix_comments_post_id_id", "post_id", "id"),
        # The moderators' flagged list (hearth_content.flags).
        Index("ix_comments_community_id_flagged_id", "community_id", "flagged", "id"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    post_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID
    parent_id: uuid.UUID | None = None
    # 0 for a top-level comment; a reply is one deeper than its parent.
    depth: int = 0
    body: str = Field(sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    edited_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # Soft delete: the row stays so replies keep their place in the thread.
    deleted_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # Moderation's verdict (docs/content.md, "Screening verdicts"): visible until it says hold.
    status: CommentStatus = Field(
        default=CommentStatus.visible,
        sa_type=String(16),
        sa_column_kwargs={"server_default": "visible"},
    )
    screening_id: uuid.UUID | None = None
    hold_reasons: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    flagged: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})
    tags: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    # The body as written, kept as moderation's evidence when screening censored it.
    original_body: str | None = Field(default=None, sa_type=Text)
    # Rejected in moderation's queue: the reason its author reads, and the deciding entry.
    rejection_reason: str | None = Field(default=None, sa_type=Text)
    moderation_case_id: uuid.UUID | None = Field(default=None, index=True)


class Reaction(ContentModel, table=True):
    """One member's reaction of one kind on one post."""

    __tablename__ = "reactions"
    __table_args__ = (
        # The database enforces one of each kind per member per post, even under concurrency.
        UniqueConstraint("post_id", "member_id", "kind", name="uq_reactions_post_member_kind"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    post_id: uuid.UUID = Field(index=True)
    member_id: uuid.UUID
    kind: str = Field(sa_type=String(24))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class CommentCreate(ContentModel):
    """Body of POST /posts/{post_id}/comments."""

    body: str = Field(min_length=1, max_length=COMMENT_MAX)
    parent_id: uuid.UUID | None = None

    @field_validator("body")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("body must not be blank")
        return value


class CommentEdit(ContentModel):
    """Body of PATCH /comments/{comment_id}."""

    body: str = Field(min_length=1, max_length=COMMENT_MAX)

    @field_validator("body")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("body must not be blank")
        return value


class CommentPublic(ContentModel):
    """A comment as clients see it (a deleted one keeps its place with an empty body)."""

    id: uuid.UUID
    post_id: uuid.UUID
    author_id: uuid.UUID
    parent_id: uuid.UUID | None
    depth: int
    body: str
    created_at: datetime
    edited_at: datetime | None
    deleted_at: datetime | None
    status: CommentStatus = CommentStatus.visible
    flagged: bool = False
    tags: list[str] = []
    rejection_reason: str | None = None


class ReactionCreate(ContentModel):
    """Body of PUT /posts/{post_id}/reactions."""

    kind: ReactionKind


class ReactionCounts(ContentModel):
    """Reaction counts of a post, and the caller's own kinds."""

    post_id: uuid.UUID
    counts: dict[str, int]
    mine: list[str]
