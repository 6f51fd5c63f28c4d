"""The items read model's use cases: merge one fact of content's into an item, look one up.

Every merge is idempotent (applying a fact twice changes nothing) and order-tolerant (facts
merge per field by their own round or time), so redeliveries and reordering end in one row.
Concurrent facts about one item: the row is read FOR UPDATE (PostgreSQL); two first facts
racing to insert it collide on the primary key and the loser's delivery is retried.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_moderation.items.models import Item, ItemType


async def item_of(session: AsyncSession, *, item_type: str, item_id: uuid.UUID) -> Item | None:
    """Moderation's copy of one post or comment, or None if content never announced it."""
    return await session.get(Item, (str(item_type), item_id))


async def _locked(
    session: AsyncSession, item_type: ItemType, item_id: uuid.UUID, community_id: uuid.UUID
) -> Item:
    found = (
        await session.exec(
            select(Item)
            .where(Item.item_type == item_type, Item.item_id == item_id)
            .with_for_update()
        )
    ).first()
    if found is None:
        found = Item(item_type=item_type, item_id=item_id, community_id=community_id)
        session.add(found)
    return found


def _later(current: datetime | None, new: datetime | None) -> datetime | None:
    if current is None:
        return new
    if new is None:
        return current
    return max(current, new)


async def item_created(
    session: AsyncSession,
    *,
    item_type: ItemType,
    item_id: uuid.UUID,
    community_id: uuid.UUID,
    author_id: uuid.UUID | None,
    created_at: datetime,
    title: str = "",
    text: str = "",
    round: int = 0,
    post_id: uuid.UUID | None = None,
    parent_id: uuid.UUID | None = None,
    attachments: list[dict[str, Any]] | None = None,
) -> Item:
    """Merge a creation (or a post's submission round) into the item."""
    item = await _locked(session, item_type, item_id, community_id)
    item.community_id = community_id
    item.author_id = author_id or item.author_id
    item.post_id = post_id or item.post_id
    item.parent_id = parent_id or item.parent_id
    item.known = True
    if item.created_at is None or created_at < item.created_at:
        item.created_at = created_at  # the first round's time is the item's
    if item.text_at is None or (round, created_at) > (item.text_round, item.text_at):
        _set_text(item, title=title, text=text, attachments=attachments, round=round, at=created_at)
    return item


async def item_edited(
    session: AsyncSession,
    *,
    item_type: ItemType,
    item_id: uuid.UUID,
    community_id: uuid.UUID,
    edited_at: datetime,
    author_id: uuid.UUID | None = None,
    post_id: uuid.UUID | None = None,
    revision: int | None = None,
    text: str | None = None,
    title: str | None = None,
) -> Item:
    """Merge an edit: its time and revision, and its text when the edit carries one."""
    item = await _locked(session, item_type, item_id, community_id)
    item.author_id = item.author_id or author_id
    item.post_id = item.post_id or post_id
    item.edited_at = _later(item.edited_at, edited_at)
    if revision is not None:
        item.revision = max(item.revision, revision)
    if text is not None and (
        item.text_at is None or (0, edited_at) >= (item.text_round, item.text_at)
    ):
        _set_text(
            item,
            title=item.title if title is None else title,
            text=text,
            attachments=None,
            round=max(item.text_round, 0),  # an edit belongs to the current round
            at=edited_at,
        )
    return item


async def item_deleted(
    session: AsyncSession,
    *,
    item_type: ItemType,
    item_id: uuid.UUID,
    community_id: uuid.UUID,
    deleted_at: datetime,
    deleted_by: uuid.UUID | None,
    author_id: uuid.UUID | None = None,
    post_id: uuid.UUID | None = None,
) -> Item:
    """Mark the item deleted (the earliest deletion counts); its text stays as it was."""
    item = await _locked(session, item_type, item_id, community_id)
    item.author_id = item.author_id or author_id
    item.post_id = item.post_id or post_id
    if item.deleted_at is None or deleted_at < item.deleted_at:
        item.deleted_at = deleted_at
        item.deleted_by = deleted_by
    return item


def _set_text(
    item: Item,
    *,
    title: str,
    text: str,
    attachments: list[dict[str, Any]] | None,
    round: int,
    at: datetime,
) -> None:
    item.title = title
    item.text = text
    if attachments is not None:
        item.attachments = attachments
    item.text_round = round
    item.text_at = at
