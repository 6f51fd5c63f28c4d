"""Moderation hides reported items: `item.hidden` takes a published post out of members' sight
(status `held`, reason `reported`), and a visible comment likewise; `item.restored` puts
either back.

Its own consumer (`content__moderation_hiding`), parsed with content's own tolerant models.
Only an item that this module hid is shown again, so a restore never undoes a screening
hold or a rejection.
"""

from __future__ import annotations

import logging
import uuid

from pydantic import BaseModel, ConfigDict
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_content.discussion import service as discussion
from hearth_content.models import Post, PostStatus
from hearth_content.screening import REPORTED
from servicekit.consumer import EventConsumer
from servicekit.deps import handler_uow
from servicekit.events import Envelope
from servicekit.ids import utcnow

log = logging.getLogger(__name__)

hiding = EventConsumer("content__moderation_hiding")


class ItemHiddenFact(BaseModel):
    """What content reads from moderation's item.hidden.v1 and item.restored.v1."""

    model_config = ConfigDict(extra="ignore")

    community_id: uuid.UUID
    item_type: str
    item_id: uuid.UUID


@hiding.handles("hearth.moderation.item.hidden.v1", payload=ItemHiddenFact)
async def on_item_hidden(session: AsyncSession, envelope: Envelope, data: ItemHiddenFact) -> None:
    """Hide a published post or a visible comment from members (author and staff still see it)."""
    if data.item_type == "comment":
        await discussion.hide_comment(
            handler_uow(session),
            comment_id=data.item_id,
            community_id=data.community_id,
            reason=REPORTED,
        )
        return
    post = await _post(session, data)
    if post is None or post.status != PostStatus.published:
        return  # not (or no longer) visible: nothing to hide
    post.status = PostStatus.held
    post.hold_reasons = [REPORTED]
    post.held_at = utcnow()
    session.add(post)


@hiding.handles("hearth.moderation.item.restored.v1", payload=ItemHiddenFact)
async def on_item_restored(session: AsyncSession, envelope: Envelope, data: ItemHiddenFact) -> None:
    """Show a post or comment again that moderation's reports hid."""
    if data.item_type == "comment":
        await discussion.restore_comment(
            handler_uow(session),
            comment_id=data.item_id,
            community_id=data.community_id,
            reason=REPORTED,
        )
        return
    post = await _post(session, data)
    if post is None or post.status != PostStatus.held or post.hold_reasons != [REPORTED]:
        return
    post.status = PostStatus.published
    post.hold_reasons = []
    session.add(post)


async def _post(session: AsyncSession, data: ItemHiddenFact) -> Post | None:
    if data.item_type != "post":
        log.info("moderation hid a %s; content hides posts and comments", data.item_type)
        return None
    post = await session.get(Post, data.item_id)
    return post if post is not None and post.community_id == data.community_id else None
