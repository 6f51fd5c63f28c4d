"""Moderation's queue decides held items, and appeals undo its rejections: content applies both.

Its own consumer (`content__moderation_decisions`), parsed with content's own tolerant models:

- `case.decided.v1` of a `held` entry (screening held a post or comment): `dismiss` approves it
  (a post goes on as if screening had passed it: published, scheduled, or into the community's
  review stages; a comment is shown), `uphold` rejects it with the `author_reason` its author
  reads on the post (or comment). Entries of other kinds (reports, appeals) act elsewhere.
- `appeal.decided.v1` of a queue decision, `lifted` or `reduced`: the post or comment that
  decision rejected is restored (published / shown again), found by the entry id content kept.

Only an item in the state the decision expects is changed, so redeliveries, a decision about an
item content's own review already moved on, or a post that hiding (reports) held, change nothing.
"""

from __future__ import annotations

import logging
import uuid

from pydantic import BaseModel, ConfigDict
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_content import service as posts
from hearth_content.calendar import service as calendar
from hearth_content.discussion import service as discussion
from hearth_content.events import PostRejected
from hearth_content.models import Post, PostStatus
from hearth_content.review import service as review
from hearth_content.screening import REPORTED
from servicekit.consumer import EventConsumer
from servicekit.deps import UnitOfWork, handler_uow
from servicekit.events import Envelope
from servicekit.ids import utcnow

log = logging.getLogger(__name__)

decisions = EventConsumer("content__moderation_decisions")

# What the author reads when the moderator gave no reason.
DEFAULT_REJECTION = "rejected by the community's moderators"
# A rejection in moderation's queue, not in one of content's review stages (1, 2).
QUEUE_STAGE = 0
RESTORING = frozenset({"lifted", "reduced"})


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CaseDecidedFact(_Tolerant):
    """What content reads from hearth.moderation.case.decided.v1."""

    entry_id: uuid.UUID
    community_id: uuid.UUID
    kind: str
    item_type: str
    item_id: uuid.UUID
    actor_id: uuid.UUID
    decision: str
    author_reason: str | None = None


class AppealDecidedFact(_Tolerant):
    """What content reads from hearth.moderation.appeal.decided.v1."""

    appeal_id: uuid.UUID
    community_id: uuid.UUID
    target_type: str
    target_id: uuid.UUID
    outcome: str
    reason: str = ""


@decisions.handles("hearth.moderation.case.decided.v1", payload=CaseDecidedFact)
async def on_case_decided(session: AsyncSession, envelope: Envelope, data: CaseDecidedFact) -> None:
    """Approve (`dismiss`) or reject (`uphold`) a post or comment screening held."""
    if data.kind != "held" or data.decision not in ("uphold", "dismiss"):
        return
    uow = handler_uow(session)
    approve = data.decision == "dismiss"
    reason = (data.author_reason or "").strip() or DEFAULT_REJECTION
    if data.item_type == "post":
        if approve:
            await approve_held_post(uow, post_id=data.item_id, community_id=data.community_id)
        else:
            await reject_held_post(
                uow,
                post_id=data.item_id,
                community_id=data.community_id,
                case_id=data.entry_id,
                moderator_id=data.actor_id,
                reason=reason,
            )
    elif data.item_type == "comment":
        if approve:
            await discussion.release_held_comment(
                uow, comment_id=data.item_id, community_id=data.community_id
            )
        else:
            await discussion.reject_held_comment(
                uow,
                comment_id=data.item_id,
                community_id=data.community_id,
                case_id=data.entry_id,
                reason=reason,
            )


@decisions.handles("hearth.moderation.appeal.decided.v1", payload=AppealDecidedFact)
async def on_appeal_decided(
    session: AsyncSession, envelope: Envelope, data: AppealDecidedFact
) -> None:
    """Restore the post or comment a queue decision rejected when its appeal lifts it."""
    if data.target_type != "decision" or data.outcome not in RESTORING:
        return  # upheld, or an appeal of a sanction (members restores what that took)
    uow = handler_uow(session)
    found = (
        await session.exec(
            select(Post).where(
                col(Post.moderation_case_id) == data.target_id,
                col(Post.community_id) == data.community_id,
            )
        )
    ).first()
    if found is not None:
        await restore_rejected_post(uow, post_id=found.id)
        return
    await discussion.restore_rejected_comment(
        uow, case_id=data.target_id, community_id=data.community_id
    )


async def _held_post(uow: UnitOfWork, post_id: uuid.UUID, community_id: uuid.UUID) -> Post | None:
    post = await uow.session.get(Post, post_id, with_for_update=True)
    if post is None or post.community_id != community_id or post.deleted_at is not None:
        return None
    if post.status != PostStatus.held or post.hold_reasons == [REPORTED]:
        return None  # not held by screening (reports' holds are decided through item.restored)
    return post


async def approve_held_post(
    uow: UnitOfWork, *, post_id: uuid.UUID, community_id: uuid.UUID
) -> Post | None:
    """A moderator approved a held post: it goes on as if screening had passed it."""
    post = await _held_post(uow, post_id, community_id)
    if post is None:
        return None
    post.hold_reasons = []
    await _go_on(uow, post)
    return post


async def reject_held_post(
    uow: UnitOfWork,
    *,
    post_id: uuid.UUID,
    community_id: uuid.UUID,
    case_id: uuid.UUID,
    moderator_id: uuid.UUID,
    reason: str,
) -> Post | None:
    """A moderator rejected a held post: rejected, with the reason its author reads."""
    post = await _held_post(uow, post_id, community_id)
    if post is None:
        return None
    now = utcnow()
    post.status = PostStatus.rejected
    post.review_stage = None
    post.rejection_reason = reason
    post.moderation_case_id = case_id
    uow.session.add(post)
    await uow.record(
        PostRejected(
            post_id=post.id,
            community_id=post.community_id,
            author_id=post.author_id,
            column_id=await calendar.column_of(uow, post.id),
            reviewer_id=moderator_id,
            round=post.review_round,
            stage=QUEUE_STAGE,
            reason=reason,
            rejected_at=now,
        ),
        subject=str(post.id),
    )
    return post


async def restore_rejected_post(uow: UnitOfWork, *, post_id: uuid.UUID) -> Post | None:
    """An appeal lifted the queue's rejection: the post is published (or scheduled) again."""
    post = await uow.session.get(Post, post_id, with_for_update=True)
    if post is None or post.status != PostStatus.rejected or post.deleted_at is not None:
        return None  # resubmitted, deleted or already restored meanwhile
    post.rejection_reason = None
    post.hold_reasons = []
    post.review_stage = None  # a moderator other than the one who rejected it has decided
    await _go_on(uow, post)
    return post


async def _go_on(uow: UnitOfWork, post: Post) -> None:
    """Where screening's approval would have sent the post: review stages, or out."""
    if review.needs_review(post):
        post.status = PostStatus.in_review
        uow.session.add(post)
        return
    await posts.release(uow, post, utcnow(), post.screening_id)
    log.info("post %s released by a moderation decision", post.id)
