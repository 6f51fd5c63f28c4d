"""Content's post and comment facts, merged into moderation's items read model.

Each payload is read with moderation's own tolerant model (only the fields it needs, extra
fields ignored), never with content's classes; tests check them against content's models.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_moderation.items import service
from hearth_moderation.items.models import ItemType
from servicekit.consumer import EventConsumer
from servicekit.events import Envelope

items = EventConsumer("moderation__items")


class _Fact(BaseModel):
    model_config = ConfigDict(extra="ignore")


class AttachmentFact(_Fact):
    """An attachment's digest, when content's events carry one."""

    sha256: str
    name: str | None = None
    size: int | None = None
    media_type: str | None = None


class PostSubmittedFact(_Fact):
    """What the items read model takes from hearth.content.post.submitted.v1."""

    post_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID | None = None
    title: str = ""
    body: str = ""
    submitted_at: datetime
    round: int = 0
    attachments: list[AttachmentFact] | None = None


class PostEditedFact(_Fact):
    """What the items read model takes from hearth.content.post.edited.v1."""

    post_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID | None = None
    revision: int | None = None
    edited_at: datetime
    title: str | None = None
    body: str | None = None


class PostDeletedFact(_Fact):
    """What the items read model takes from hearth.content.post.deleted.v1."""

    post_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID | None = None
    deleted_by: uuid.UUID | None = None
    deleted_at: datetime


class CommentCreatedFact(_Fact):
    """What the items read model takes from hearth.content.comment.created.v1."""

    comment_id: uuid.UUID
    post_id: uuid.UUID | None = None
    community_id: uuid.UUID
    author_id: uuid.UUID | None = None
    parent_id: uuid.UUID | None = None
    body: str = ""
    created_at: datetime
    attachments: list[AttachmentFact] | None = None


class CommentEditedFact(_Fact):
    """What the items read model takes from hearth.content.comment.edited.v1."""

    comment_id: uuid.UUID
    post_id: uuid.UUID | None = None
    community_id: uuid.UUID
    author_id: uuid.UUID | None = None
    body: str
    edited_at: datetime


class CommentDeletedFact(_Fact):
    """What the items read model takes from hearth.content.comment.deleted.v1."""

    comment_id: uuid.UUID
    post_id: uuid.UUID | None = None
    community_id: uuid.UUID
    deleted_by: uuid.UUID | None = None
    deleted_at: datetime


def _digests(found: list[AttachmentFact] | None) -> list[dict[str, Any]] | None:
    return None if found is None else [a.model_dump(exclude_none=True) for a in found]


@items.handles("hearth.content.post.submitted.v1", payload=PostSubmittedFact)
async def on_post_submitted(
    session: AsyncSession, envelope: Envelope, data: PostSubmittedFact
) -> None:
    """A post's submission round: the item's text as of that round."""
    await service.item_created(
        session,
        item_type=ItemType.post,
        item_id=data.post_id,
        community_id=data.community_id,
        author_id=data.author_id,
        created_at=data.submitted_at,
        title=data.title,
        text=data.body,
        round=data.round,
        attachments=_digests(data.attachments),
    )


@items.handles("hearth.content.post.edited.v1", payload=PostEditedFact)
async def on_post_edited(session: AsyncSession, envelope: Envelope, data: PostEditedFact) -> None:
    """A post was edited: its revision and time (and text, once content's event carries it)."""
    await service.item_edited(
        session,
        item_type=ItemType.post,
        item_id=data.post_id,
        community_id=data.community_id,
        author_id=data.author_id,
        edited_at=data.edited_at,
        revision=data.revision,
        title=data.title,
        text=data.body,
    )


@items.handles("hearth.content.post.deleted.v1", payload=PostDeletedFact)
async def on_post_deleted(session: AsyncSession, envelope: Envelope, data: PostDeletedFact) -> None:
    """A post was deleted: marked, its copy kept."""
    await service.item_deleted(
        session,
        item_type=ItemType.post,
        item_id=data.post_id,
        community_id=data.community_id,
        author_id=data.author_id,
        deleted_at=data.deleted_at,
        deleted_by=data.deleted_by,
    )


@items.handles("hearth.content.comment.created.v1", payload=CommentCreatedFact)
async def on_comment_created(
    session: AsyncSession, envelope: Envelope, data: CommentCreatedFact
) -> None:
    """A comment: the item's text as written."""
    await service.item_created(
        session,
        item_type=ItemType.comment,
        item_id=data.comment_id,
        community_id=data.community_id,
        author_id=data.author_id,
        created_at=data.created_at,
        text=data.body,
        post_id=data.post_id,
        parent_id=data.parent_id,
        attachments=_digests(data.attachments),
    )


@items.handles("hearth.content.comment.edited.v1", payload=CommentEditedFact)
async def on_comment_edited(
    session: AsyncSession, envelope: Envelope, data: CommentEditedFact
) -> None:
    """A comment was edited: its new text (the latest edit wins)."""
    await service.item_edited(
        session,
        item_type=ItemType.comment,
        item_id=data.comment_id,
        community_id=data.community_id,
        author_id=data.author_id,
        post_id=data.post_id,
        edited_at=data.edited_at,
        text=data.body,
    )


@items.handles("hearth.content.comment.deleted.v1", payload=CommentDeletedFact)
async def on_comment_deleted(
    session: AsyncSession, envelope: Envelope, data: CommentDeletedFact
) -> None:
    """A comment was deleted: marked, its copy kept (content drops the body, moderation not)."""
    await service.item_deleted(
        session,
        item_type=ItemType.comment,
        item_id=data.comment_id,
        community_id=data.community_id,
        post_id=data.post_id,
        deleted_at=data.deleted_at,
        deleted_by=data.deleted_by,
    )
