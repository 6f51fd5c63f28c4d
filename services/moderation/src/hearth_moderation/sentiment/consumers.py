"""Every new post and comment is scored and counted into its community's sentiment."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_moderation.sentiment import scoring, service
from hearth_moderation.settings import ModerationSettings
from servicekit.consumer import EventConsumer
from servicekit.deps import handler_uow
from servicekit.events import Envelope
from servicekit.runtime import runtime_of, settings_of

sentiment = EventConsumer("moderation__sentiment")


class SubmittedPostFact(BaseModel):
    """What sentiment reads from hearth.content.post.submitted.v1."""

    model_config = ConfigDict(extra="ignore")

    post_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID | None = None
    title: str = ""
    body: str = ""
    submitted_at: datetime


class NewCommentFact(BaseModel):
    """What sentiment reads from hearth.content.comment.created.v1."""

    model_config = ConfigDict(extra="ignore")

    comment_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID | None = None
    body: str = ""
    created_at: datetime


async def _count(
    session: AsyncSession,
    *,
    item_type: str,
    item_id: uuid.UUID,
    community_id: uuid.UUID,
    author_id: uuid.UUID | None,
    text: str,
    at: datetime,
) -> None:
    settings = settings_of(runtime_of(session), ModerationSettings)
    await asyncio.to_thread(scoring.warm_up)  # the first call loads the lexicons off the loop
    await service.record_score(
        handler_uow(session),
        item_type=item_type,
        item_id=item_id,
        community_id=community_id,
        author_id=author_id,
        at=at,
        score=scoring.score(text),
        bucket_seconds=settings.sentiment_bucket_seconds,
        alpha=settings.sentiment_ewma_alpha,
        z_threshold=settings.sentiment_z_threshold,
        min_volume=settings.sentiment_min_volume,
        min_share=settings.sentiment_min_share,
    )


@sentiment.handles("hearth.content.post.submitted.v1", payload=SubmittedPostFact)
async def on_post(session: AsyncSession, envelope: Envelope, data: SubmittedPostFact) -> None:
    """Score a post once (its first submission round)."""
    await _count(
        session,
        item_type="post",
        item_id=data.post_id,
        community_id=data.community_id,
        author_id=data.author_id,
        text=f"{data.title}\n{data.body}".strip(),
        at=data.submitted_at,
    )


@sentiment.handles("hearth.content.comment.created.v1", payload=NewCommentFact)
async def on_comment(session: AsyncSession, envelope: Envelope, data: NewCommentFact) -> None:
    """Score a comment once."""
    await _count(
        session,
        item_type="comment",
        item_id=data.comment_id,
        community_id=data.community_id,
        author_id=data.author_id,
        text=data.body,
        at=data.created_at,
    )
