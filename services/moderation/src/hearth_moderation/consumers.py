"""Moderation's subscriptions: every submitted post is screened automatically.

Payloads are parsed with moderation's own tolerant models (only the fields it needs, extra
fields ignored), never with the producing service's classes.
"""

from __future__ import annotations

import uuid
from typing import cast

from pydantic import BaseModel, ConfigDict
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_moderation import service
from hearth_moderation.settings import ModerationSettings
from hearth_moderation.terms import matcher_for
from servicekit.consumer import EventConsumer
from servicekit.deps import handler_uow
from servicekit.events import Envelope
from servicekit.runtime import runtime_of

screening = EventConsumer("moderation__screening")


class PostSubmittedV1(BaseModel):
    """What moderation reads from hearth.content.post.submitted.v1."""

    model_config = ConfigDict(extra="ignore")

    post_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID | None = None
    title: str = ""
    body: str = ""


@screening.handles("hearth.content.post.submitted.v1")
async def on_post_submitted(session: AsyncSession, envelope: Envelope) -> None:
    """Screen the post against the banned terms and announce the decision."""
    data: PostSubmittedV1 = envelope.payload(PostSubmittedV1)
    settings = cast(ModerationSettings, runtime_of(session).settings)
    await service.screen_post(
        uow=handler_uow(session),
        post_id=data.post_id,
        community_id=data.community_id,
        author_id=data.author_id,
        title=data.title,
        body=data.body,
        matcher=matcher_for(settings.banned_terms),
        source_event_id=envelope.id,
    )
