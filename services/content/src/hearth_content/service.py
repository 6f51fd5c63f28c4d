"""Content's use cases: keyword-only functions over a unit of work.

Functions called by routes commit; the `apply_*` functions are called by event consumers and
never commit, because the kernel commits their changes together with the inbox row.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlmodel import col, or_, select

from hearth_content.events import PostHeld, PostPublished, PostScheduled, PostSubmitted
from hearth_content.models import (
    COMMUNITY_STAFF_ROLES,
    Community,
    Membership,
    MembershipStatus,
    Post,
    PostCreate,
    PostStatus,
)
from hearth_content.search import service as search
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.pagination import PageParams, after_id
from servicekit.problems import Problem, forbidden, not_found
from servicekit.readmodel import apply_snapshot
from servicekit.runtime import ServiceRuntime

log = logging.getLogger(__name__)


# --- Posts ------------------------------------------------------------------------------------


async def submit_post(
    *, uow: UnitOfWork, community_id: uuid.UUID, data: PostCreate, actor: Principal
) -> Post:
    """Submit a post for review as an active, unmuted member of the community."""
    community, membership = await _community_access(uow, community_id, actor)
    if membership is None:
        raise Problem(403, "not-a-member", "Forbidden", "only members of this community may post")
    if community.archived:
        raise Problem(409, "community-archived", "Conflict", "the community is archived")
    if membership.muted_until is not None and _aware(membership.muted_until) > utcnow():
        raise Problem(403, "muted", "Forbidden", "you are muted in this community")
    post = Post.model_validate(
        data, update={"community_id": community_id, "author_id": actor.subject}
    )
    uow.session.add(post)
    await search.index_post(uow, post)
    await uow.record(
        PostSubmitted(
            post_id=post.id,
            community_id=community_id,
            author_id=actor.subject,
            title=post.title,
            body=post.body,
            format=post.format,
            url=post.url,
            submitted_at=post.submitted_at,
        ),
        subject=str(post.id),
    )
    await uow.commit()
    return post


async def get_post(*, uow: UnitOfWork, post_id: uuid.UUID, actor: Principal) -> Post:
    """A post the actor may read; anything else is reported as missing, not as forbidden."""
    post = await uow.session.get(Post, post_id)
    if post is None:
        raise not_found("post", post_id)
    if actor.is_staff:
        return post
    membership = await _active_membership(uow, post.community_id, actor.subject)
    if membership is not None and (
        membership.role in COMMUNITY_STAFF_ROLES
        or post.status == PostStatus.published
        or post.author_id == actor.subject
    ):
        return post
    raise not_found("post", post_id)


async def list_posts(
    *,
    uow: UnitOfWork,
    community_id: uuid.UUID,
    actor: Principal,
    status: PostStatus | None,
    page: PageParams,
) -> list[Post]:
    """Posts of a community, newest first (limit+1 rows): members see published and their own."""
    _, membership = await _community_access(uow, community_id, actor)
    if membership is None and not actor.is_staff:
        raise forbidden("only members of this community may list its posts")
    stmt = (
        select(Post)
        .where(Post.community_id == community_id)
        .order_by(col(Post.id).desc())
        .limit(page.limit + 1)
    )
    sees_all = actor.is_staff or (
        membership is not None and membership.role in COMMUNITY_STAFF_ROLES
    )
    if not sees_all:
        stmt = stmt.where(
            or_(col(Post.status) == PostStatus.published, col(Post.author_id) == actor.subject)
        )
    if status is not None:
        stmt = stmt.where(col(Post.status) == status)
    if page.after:
        stmt = stmt.where(col(Post.id) < after_id(page))
    return list((await uow.session.exec(stmt)).all())


async def apply_screening(
    *,
    uow: UnitOfWork,
    post_id: uuid.UUID,
    screening_id: uuid.UUID,
    decision: str,
    reasons: list[str],
) -> Post | None:
    """Apply moderation's verdict to a post still pending review; a decided post is left alone."""
    post = await uow.session.get(Post, post_id, with_for_update=True)
    if post is None:
        # The post committed before its submission event left, so this verdict is not ours.
        log.warning("screening %s names unknown post %s; ignored", screening_id, post_id)
        return None
    if post.status != PostStatus.pending_review:
        return None
    now = utcnow()
    event: PostPublished | PostScheduled | PostHeld
    if decision == "approved" and post.publish_at is not None and _aware(post.publish_at) > now:
        # Passed review before its calendar slot: the scheduled publisher releases it then.
        post.status = PostStatus.scheduled
        event = PostScheduled(
            post_id=post.id,
            community_id=post.community_id,
            author_id=post.author_id,
            title=post.title,
            format=post.format,
            screening_id=screening_id,
            publish_at=_aware(post.publish_at),
        )
    elif decision == "approved":
        event = _publish(post, now, screening_id)
    elif decision == "held":
        post.status = PostStatus.held
        post.held_at = now
        post.hold_reasons = list(reasons)
        event = PostHeld(
            post_id=post.id,
            community_id=post.community_id,
            author_id=post.author_id,
            reasons=list(reasons),
            screening_id=screening_id,
            held_at=now,
        )
    else:
        # A decision this version does not know (moderation may add some): leave it pending.
        log.warning(
            "screening %s has unknown decision %r; post %s left pending",
            screening_id,
            decision,
            post_id,
        )
        return None
    post.screening_id = screening_id
    uow.session.add(post)
    await uow.record(event, subject=str(post.id))
    return post


async def publish_due(runtime: ServiceRuntime, *, now: datetime, batch: int = 100) -> int:
    """Publish scheduled posts whose slot has come; the number published.

    Safe with several replicas: due rows are claimed with `FOR UPDATE SKIP LOCKED` on
    PostgreSQL, so replicas running this at once take different posts and each post is
    published (and announced) once; SQLite has one writer at a time. The clock is a parameter
    for tests.
    """
    async with runtime.db.session() as session:
        uow = UnitOfWork(session, runtime)
        due = (
            select(Post)
            .where(col(Post.status) == PostStatus.scheduled, col(Post.publish_at) <= now)
            .order_by(col(Post.publish_at), col(Post.id))
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
        posts = list((await session.exec(due)).all())
        for post in posts:
            event = _publish(post, now, post.screening_id)
            session.add(post)
            await uow.record(event, subject=str(post.id))
        await uow.commit()
    return len(posts)


def _publish(post: Post, now: datetime, screening_id: uuid.UUID | None) -> PostPublished:
    """Mark a post published now; the event announcing it."""
    post.status = PostStatus.published
    post.published_at = now
    return PostPublished(
        post_id=post.id,
        community_id=post.community_id,
        author_id=post.author_id,
        title=post.title,
        format=post.format,
        screening_id=screening_id,
        published_at=now,
    )


# --- Read models (from members' snapshots) ----------------------------------------------------


async def apply_community(*, uow: UnitOfWork, values: Mapping[str, Any]) -> bool:
    """Take a community snapshot unless the read model holds this version or a newer one."""
    return await apply_snapshot(uow.session, Community, values, key=["id"])


async def apply_membership(*, uow: UnitOfWork, values: Mapping[str, Any]) -> bool:
    """Take a membership snapshot unless the read model holds this version or a newer one."""
    return await apply_snapshot(uow.session, Membership, values, key=["community_id", "user_id"])


# --- Helpers ----------------------------------------------------------------------------------


async def _community_access(
    uow: UnitOfWork, community_id: uuid.UUID, actor: Principal
) -> tuple[Community, Membership | None]:
    community = await uow.session.get(Community, community_id)
    if community is None:
        raise not_found("community", community_id)
    membership = await _active_membership(uow, community_id, actor.subject)
    # Not yet known (created not arrived) counts as private: never reveal too much.
    if membership is None and community.visibility != "public" and not actor.is_staff:
        raise not_found("community", community_id)  # do not reveal private communities
    return community, membership


async def _active_membership(
    uow: UnitOfWork, community_id: uuid.UUID, user_id: uuid.UUID
) -> Membership | None:
    found = await uow.session.get(Membership, (community_id, user_id))
    return found if found is not None and found.status == MembershipStatus.active else None


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every stored time was written as UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
