"""Held entries follow content's own review: a held post that content's reviewers publish,
approve, reject or that its author deletes leaves moderation's queue (parsed with moderation's
own tolerant models). A rejection is kept as an upheld decision by the reviewer, so the author
can appeal it here, to a moderator other than that reviewer."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_moderation.queue.models import Decision
from hearth_moderation.queue.service import settle_held
from servicekit.consumer import EventConsumer
from servicekit.deps import handler_uow
from servicekit.events import Envelope

held_sync = EventConsumer("moderation__held_sync")


class PostDecidedFact(BaseModel):
    """What moderation reads from content's post.published/approved/rejected/deleted.v1."""

    model_config = ConfigDict(extra="ignore")

    post_id: uuid.UUID
    reviewer_id: uuid.UUID | None = None
    deleted_by: uuid.UUID | None = None
    reason: str | None = None


@held_sync.handles("hearth.content.post.published.v1", payload=PostDecidedFact)
@held_sync.handles("hearth.content.post.approved.v1", payload=PostDecidedFact)
@held_sync.handles("hearth.content.post.rejected.v1", payload=PostDecidedFact)
@held_sync.handles("hearth.content.post.deleted.v1", payload=PostDecidedFact)
async def on_post_decided(session: AsyncSession, envelope: Envelope, data: PostDecidedFact) -> None:
    """Resolve the post's open held entry the way content decided it."""
    rejected = envelope.type.endswith(".rejected.v1")
    await settle_held(
        handler_uow(session),
        item_type="post",
        item_id=data.post_id,
        decision=Decision.uphold if rejected else Decision.dismiss,
        decided_by=data.reviewer_id or data.deleted_by,
        reason=data.reason if rejected else None,
    )
