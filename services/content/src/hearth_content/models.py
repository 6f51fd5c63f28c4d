"""Content's tables: posts, and read models of communities and memberships (members' snapshots).

The read models are content's own copy of members' facts (event-carried state transfer), so
content can authorize a post without calling members. Their role and status columns are plain
strings rather than database enums: members may add values later, and a tolerant reader must
store them rather than fail.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from pydantic import field_validator, model_validator
from sqlalchemy import JSON, Column, Index, String, Text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from servicekit.ids import utcnow, uuid7
from servicekit.tables import KitTables
from servicekit.types import CleanInput, UtcDateTime, UtcDatetime


class ContentModel(SQLModel, CleanInput, registry=registry()):
    """Base of content's tables: its own metadata, because content owns its own database."""


metadata = ContentModel.metadata
kit = KitTables(metadata)


# --- Read models fed by members' events -------------------------------------------------------


class CommunityRole(StrEnum):
    """Permission roles inside one community, as members defines them."""

    owner = "owner"
    admin = "admin"
    moderator = "moderator"
    member = "member"


# Community roles that may see every post of their community (they run its review later).
COMMUNITY_STAFF_ROLES = frozenset(
    {CommunityRole.owner, CommunityRole.admin, CommunityRole.moderator}
)


class MembershipStatus(StrEnum):
    """Where a membership stands, as members defines it."""

    active = "active"
    left = "left"
    removed = "removed"
    banned = "banned"


class Community(ContentModel, table=True):
    """Read model: a community as members announced it."""

    __tablename__ = "communities"

    id: uuid.UUID = Field(primary_key=True)
    # Every column comes from members' community snapshot (the whole state, replaced at once).
    name: str | None = Field(default=None, max_length=200)
    kind: str | None = Field(default=None, max_length=40)
    visibility: str | None = Field(default=None, max_length=20)
    owner_id: uuid.UUID | None = None
    created_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    archived: bool = False
    # The snapshot's version: only a newer snapshot replaces the row (servicekit.readmodel).
    version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class Membership(ContentModel, table=True):
    """Read model: one person's place in one community, as members announced it."""

    __tablename__ = "memberships"

    community_id: uuid.UUID = Field(primary_key=True)
    user_id: uuid.UUID = Field(primary_key=True, index=True)
    membership_id: uuid.UUID | None = None
    role: str = Field(default=CommunityRole.member, max_length=40)
    status: str | None = Field(default=None, max_length=40)
    muted_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    joined_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # Tier privileges (e.g. skip_first_review) from the membership snapshot.
    privileges: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    # The snapshot's version: only a newer snapshot replaces the row (servicekit.readmodel).
    version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


# --- Posts ------------------------------------------------------------------------------------


class PostFormat(StrEnum):
    """What a post carries (内容形式)."""

    text = "text"
    link = "link"
    image = "image"
    video = "video"
    audio = "audio"


class PostStatus(StrEnum):
    """Where a post stands: in review, passed and waiting for its calendar slot, out, held."""

    pending_review = "pending_review"
    # Passed screening; waits for the community's human review stages (hearth_content.review).
    in_review = "in_review"
    rejected = "rejected"
    scheduled = "scheduled"
    published = "published"
    held = "held"


TITLE_MAX = 200
BODY_MAX = 20_000
URL_MAX = 2048
# How far ahead the content calendar reaches: a slot years away is a typo, not a plan.
SCHEDULE_HORIZON = timedelta(days=366)


class PostBase(ContentModel):
    """Fields a client may set when submitting a post."""

    title: str = Field(min_length=1, max_length=TITLE_MAX)
    body: str = Field(default="", max_length=BODY_MAX, sa_type=Text)
    format: PostFormat = Field(default=PostFormat.text, sa_type=String(16))
    url: str | None = Field(default=None, max_length=URL_MAX)


class PostCreate(PostBase):
    """Body of POST /communities/{community_id}/posts; `publish_at` books a calendar slot."""

    publish_at: UtcDatetime | None = None

    @field_validator("title")
    @classmethod
    def _strip_title(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("title must not be blank")
        return value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("url must be an absolute http(s) URL")
        return value

    @field_validator("publish_at")
    @classmethod
    def _future_slot(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        now = utcnow()
        if value <= now:
            raise ValueError("publish_at must be in the future (omit it to publish on approval)")
        if value > now + SCHEDULE_HORIZON:
            raise ValueError("publish_at may be at most 366 days ahead")
        return value

    @model_validator(mode="after")
    def _format_needs(self) -> PostCreate:
        if self.format == PostFormat.text:
            if not self.body.strip():
                raise ValueError("a text post needs a body")
            if self.url is not None:
                raise ValueError("a text post has no url")
        elif self.url is None:
            raise ValueError(f"a {self.format} post needs a url")
        return self


class Post(PostBase, table=True):
    """A post submitted to a community; visible to its members once review publishes it."""

    __tablename__ = "posts"
    __table_args__ = (
        Index("ix_posts_community_id_id", "community_id", "id"),
        # The scheduled publisher's scan: due slots of posts that passed review.
        Index("ix_posts_status_publish_at", "status", "publish_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    community_id: uuid.UUID
    author_id: uuid.UUID = Field(index=True)
    status: PostStatus = Field(default=PostStatus.pending_review, sa_type=String(24))
    hold_reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    screening_id: uuid.UUID | None = None
    submitted_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    # The calendar slot asked for: review still comes first; the post goes out at this time.
    publish_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    published_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    held_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # Human review (hearth_content.review): the stage awaited (1 or 2) and the submission round.
    review_stage: int | None = None
    review_round: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class PostPublic(PostBase):
    """A post as clients see it."""

    id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID
    status: PostStatus
    hold_reasons: list[str]
    submitted_at: datetime
    publish_at: datetime | None
    published_at: datetime | None
    held_at: datetime | None
    review_stage: int | None = None
