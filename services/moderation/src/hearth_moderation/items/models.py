"""The items read model: what moderation knows of each post and comment content announced,
and of each Q&A question events announced."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, String, Text, false
from sqlmodel import Field

from hearth_moderation.models import ModerationModel
from servicekit.types import UtcDateTime


class ItemType(StrEnum):
    """What kind of content an item is."""

    post = "post"
    comment = "comment"
    question = "question"  # events' Q&A (post_id stays empty)


class Item(ModerationModel, table=True):
    """Read model: one post or comment as content's events described it (kept after deletion).

    Fields merge per field, so any delivery order ends in the same row: the text is the one of
    the latest submission round / edit (`text_round`, `text_at`), `edited_at` and `revision`
    only grow, `deleted_at` once set stays set (content deletes softly; moderation keeps its copy
    as the source of evidence snapshots).
    """

    __tablename__ = "items"
    __table_args__ = (Index("ix_items_community_id_created_at", "community_id", "created_at"),)

    item_type: ItemType = Field(sa_type=String(20), primary_key=True)
    item_id: uuid.UUID = Field(primary_key=True)
    community_id: uuid.UUID
    author_id: uuid.UUID | None = None
    post_id: uuid.UUID | None = None  # a comment's post
    parent_id: uuid.UUID | None = None  # a reply's parent comment
    title: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    text: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    # Attachments' digests ({"sha256": ..., "name": ..., "size": ...}) when content's events carry
    # them (none do yet: the list stays empty until they do).
    attachments: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    created_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    text_round: int = Field(default=-1, sa_column_kwargs={"server_default": "-1"})
    text_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    edited_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    revision: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    deleted_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    deleted_by: uuid.UUID | None = None
    # False while only a later fact (an edit, a deletion) arrived before the item's creation.
    known: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


class ItemPublic(ModerationModel):
    """An item as moderators see it."""

    item_type: ItemType
    item_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID | None
    post_id: uuid.UUID | None
    parent_id: uuid.UUID | None
    title: str
    text: str
    attachments: list[dict[str, Any]]
    created_at: datetime | None
    edited_at: datetime | None
    revision: int
    deleted_at: datetime | None
    deleted_by: uuid.UUID | None
