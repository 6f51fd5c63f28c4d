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
    file = "file"


class PostKind(StrEnum):
    """What a post is for; announcements are staff's alone."""

    article = "article"
    discussion = "discussion"
    question = "question"
    announcement = "announcement"


class PostAuthorship(StrEnum):
    """Who stands behind a post: staff, a member's submission (投稿), or a partner (外部合作)."""

    staff = "staff"
    member = "member"
    partner = "partner"


PARTNER_MAX = 200


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
    kind: PostKind = Field(default=PostKind.article, sa_type=String(16))
    # Partner content is marked with the partner organisation's name.
    partner_name: str | None = Field(default=None, max_length=PARTNER_MAX)


def _http(value: str | None) -> str | None:
    """An absolute http(s) URL, stripped; never fetched by the server."""
    if value is None:
        return None
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("url must be an absolute http(s) URL")
    return value


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
        return _http(value)

    @field_validator("partner_name")
    @classmethod
    def _strip_partner(cls, value: str | None) -> str | None:
        value = value.strip() if value is not None else None
        return value or None

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
        elif self.format == PostFormat.link and self.url is None:
            # Media and file posts may instead carry attachments (POST /posts/{id}/attachments).
            raise ValueError("a link post needs a url")
        return self


class Post(PostBase, table=True):
    """A post submitted to a community; visible to its members once review publishes it."""

    __tablename__ = "posts"
    __table_args__ = (
        Index("ix_posts_community_id_id", "community_id", "id"),
        # The scheduled publisher's scan: due slots of posts that passed review.
        Index("ix_posts_status_publish_at", "status", "publish_at"),
        # Hot ranking and the unanswered list, both keyset-paged per community.
        Index("ix_posts_community_id_hot_score_id", "community_id", "hot_score", "id"),
        Index(
            "ix_posts_community_id_first_response_at_id", "community_id", "first_response_at", "id"
        ),
        # The moderators' flagged list (hearth_content.flags).
        Index("ix_posts_community_id_flagged_id", "community_id", "flagged", "id"),
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
    authorship: PostAuthorship = Field(default=PostAuthorship.member, sa_type=String(16))
    # The rendered, sanitized HTML of `body` (the Markdown source); the only HTML clients get.
    body_html: str = Field(default="", sa_type=Text)
    # A question's accepted answer (a comment id, set once comments land).
    accepted_answer_id: uuid.UUID | None = None
    edited_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    revision: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    # Soft delete: hidden from everyone but staff; the row stays as moderation's evidence.
    deleted_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    deleted_by: uuid.UUID | None = None
    # Pinned posts of a community, ordered by `pin_order` (lower first).
    pin_order: int | None = None
    featured: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})
    comments_locked: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})
    # A share is its own post pointing at the original; the original counts its shares.
    shared_from_id: uuid.UUID | None = Field(default=None, index=True)
    share_count: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # Interaction (hearth_content.ranking): counters and the stored hot score (docs/content.md).
    view_count: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    comment_count: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    reaction_count: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    hot_score: float | None = None
    # The first reply by someone other than the author (None: unanswered).
    first_response_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    first_response_by: uuid.UUID | None = None
    first_response_seconds: int | None = None
    # Moderation's screening: `flag` marks it for moderators, `tag` adds tags (normalized).
    flagged: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})
    tags: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    # A rejection (content's review or moderation's queue): the reason its author reads, and the
    # moderation queue entry that decided it (an appeal lifted against it restores the post).
    rejection_reason: str | None = Field(default=None, sa_type=Text)
    moderation_case_id: uuid.UUID | None = Field(default=None, index=True)


class PostUpdate(ContentModel):
    """Body of PATCH /posts/{post_id}: the fields an author may change (omitted ones stay)."""

    title: str | None = Field(default=None, min_length=1, max_length=TITLE_MAX)
    body: str | None = Field(default=None, max_length=BODY_MAX)
    url: str | None = Field(default=None, max_length=URL_MAX)
    note: str | None = Field(default=None, max_length=500)

    @field_validator("title")
    @classmethod
    def _strip_title(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value:
            raise ValueError("title must not be blank")
        return value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return _http(value)


class PostRevision(ContentModel, table=True):
    """One earlier state of a post: who changed it, when, and the fields as they were."""

    __tablename__ = "post_revisions"
    __table_args__ = (Index("ix_post_revisions_post_id_number", "post_id", "number", unique=True),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    post_id: uuid.UUID
    number: int
    editor_id: uuid.UUID
    edited_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    # The changed fields: {"title": {"from": ..., "to": ...}, ...}.
    changes: dict[str, dict[str, str | None]] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    note: str | None = Field(default=None, max_length=500)


class PostRevisionPublic(ContentModel):
    """A revision as its author and staff see it."""

    number: int
    editor_id: uuid.UUID
    edited_at: datetime
    changes: dict[str, dict[str, str | None]]
    note: str | None


class PinRequest(ContentModel):
    """Body of PUT /posts/{post_id}/pin: the place among the community's pinned posts."""

    order: int = Field(default=0, ge=0, le=1000)


class ShareRequest(ContentModel):
    """Body of POST /posts/{post_id}/shares: the community to share into."""

    community_id: uuid.UUID


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
    authorship: PostAuthorship
    body_html: str
    accepted_answer_id: uuid.UUID | None
    edited_at: datetime | None
    revision: int
    deleted_at: datetime | None
    pin_order: int | None
    featured: bool
    comments_locked: bool
    shared_from_id: uuid.UUID | None
    share_count: int
    review_stage: int | None = None
    view_count: int = 0
    comment_count: int = 0
    reaction_count: int = 0
    hot_score: float | None = None
    first_response_at: datetime | None = None
    first_response_seconds: int | None = None
    flagged: bool = False
    tags: list[str] = []
    rejection_reason: str | None = None
