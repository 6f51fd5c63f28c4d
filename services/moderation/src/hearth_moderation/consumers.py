"""Moderation's subscriptions: every submitted post, every new or edited comment and every
question asked at an activity (events' Q&A) is screened; members' snapshots feed the membership
read model that authorization reads.

Payloads are parsed with moderation's own tolerant models (only the fields it needs, extra
fields ignored), never with the producing service's classes.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_moderation import service
from hearth_moderation.items.models import ItemType
from hearth_moderation.items.service import item_created
from hearth_moderation.models import TargetType
from hearth_moderation.settings import ModerationSettings, platform_rules
from servicekit.consumer import EventConsumer
from servicekit.deps import handler_uow
from servicekit.events import Envelope
from servicekit.runtime import runtime_of, settings_of

screening = EventConsumer("moderation__screening")
memberships = EventConsumer("moderation__memberships")


class MembershipSnapshotV1(BaseModel):
    """What moderation reads from hearth.members.membership.snapshot.v1."""

    model_config = ConfigDict(extra="ignore")

    community_id: uuid.UUID
    user_id: uuid.UUID
    membership_id: uuid.UUID
    role: str
    status: str
    muted_until: datetime | None = None
    joined_at: datetime
    tier: str | None = None
    version: int


@memberships.handles("hearth.members.membership.snapshot.v1", payload=MembershipSnapshotV1)
async def on_membership_snapshot(
    session: AsyncSession, envelope: Envelope, data: MembershipSnapshotV1
) -> None:
    """Take a membership's whole state when it is newer than the one held."""
    await service.apply_membership(uow=handler_uow(session), values=data.model_dump())


class PostSubmittedV1(BaseModel):
    """What moderation reads from hearth.content.post.submitted.v1."""

    model_config = ConfigDict(extra="ignore")

    post_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID | None = None
    title: str = ""
    body: str = ""
    round: int = 0
    submitted_at: datetime | None = None


@screening.handles("hearth.content.post.submitted.v1")
async def on_post_submitted(session: AsyncSession, envelope: Envelope) -> None:
    """Screen the post against the banned terms and announce the decision."""
    data: PostSubmittedV1 = envelope.payload(PostSubmittedV1)
    settings = settings_of(runtime_of(session), ModerationSettings)
    if data.submitted_at is not None:
        # The items read model has the post before its verdict is audited (its evidence
        # snapshot needs it); the items consumer merges the same fact again, idempotently.
        await item_created(
            session,
            item_type=ItemType.post,
            item_id=data.post_id,
            community_id=data.community_id,
            author_id=data.author_id,
            created_at=data.submitted_at,
            title=data.title,
            text=data.body,
            round=data.round,
        )
    await service.screen_post(
        uow=handler_uow(session),
        post_id=data.post_id,
        community_id=data.community_id,
        author_id=data.author_id,
        title=data.title,
        body=data.body,
        round=data.round,
        platform=platform_rules(settings.banned_terms),
        source_event_id=envelope.id,
    )


class CommentWrittenV1(BaseModel):
    """What moderation reads from hearth.content.comment.created.v1 and comment.edited.v1."""

    model_config = ConfigDict(extra="ignore")

    comment_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID | None = None
    body: str = ""


@screening.handles("hearth.content.comment.created.v1", payload=CommentWrittenV1)
@screening.handles("hearth.content.comment.edited.v1", payload=CommentWrittenV1)
async def on_comment_written(
    session: AsyncSession, envelope: Envelope, data: CommentWrittenV1
) -> None:
    """Screen a new or edited comment and announce the verdict (`target_type` comment)."""
    settings = settings_of(runtime_of(session), ModerationSettings)
    await service.screen_comment(
        uow=handler_uow(session),
        comment_id=data.comment_id,
        community_id=data.community_id,
        author_id=data.author_id,
        body=data.body,
        platform=platform_rules(settings.banned_terms),
        source_event_id=envelope.id,
        edited=envelope.type.endswith(".edited.v1"),
    )


class QuestionAskedV1(BaseModel):
    """What moderation reads from hearth.events.question.asked.v1."""

    model_config = ConfigDict(extra="ignore")

    question_id: uuid.UUID
    activity_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID | None = None
    text: str = ""
    asked_at: datetime


@screening.handles("hearth.events.question.asked.v1", payload=QuestionAskedV1)
async def on_question_asked(
    session: AsyncSession, envelope: Envelope, data: QuestionAskedV1
) -> None:
    """Screen a question like a comment and announce the verdict (`target_type` question)."""
    settings = settings_of(runtime_of(session), ModerationSettings)
    # In the items read model first, so the verdict's evidence snapshot has the text as asked.
    await item_created(
        session,
        item_type=ItemType.question,
        item_id=data.question_id,
        community_id=data.community_id,
        author_id=data.author_id,
        created_at=data.asked_at,
        text=data.text,
    )
    await service.screen_target(
        uow=handler_uow(session),
        target_type=TargetType.question,
        target_id=data.question_id,
        community_id=data.community_id,
        author_id=data.author_id,
        text=data.text,
        platform=platform_rules(settings.banned_terms),
        source_event_id=envelope.id,
    )
