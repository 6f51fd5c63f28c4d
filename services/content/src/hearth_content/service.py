"""Content's use cases: keyword-only functions over a unit of work.

Functions called by routes commit; the `apply_*` functions are called by event consumers and
never commit, because the kernel commits their changes together with the inbox row.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import aliased
from sqlmodel import col, or_, select

from hearth_content import guards
from hearth_content.calendar import service as calendar
from hearth_content.events import (
    PostDeleted,
    PostEdited,
    PostHeld,
    PostPinned,
    PostPublished,
    PostScheduled,
    PostShared,
    PostSubmitted,
)
from hearth_content.models import (
    COMMUNITY_STAFF_ROLES,
    Community,
    CommunityRole,
    Membership,
    MembershipStatus,
    Post,
    PostAuthorship,
    PostCreate,
    PostKind,
    PostRevision,
    PostStatus,
    PostUpdate,
)
from hearth_content.ranking.score import rescore
from hearth_content.review import service as review
from hearth_content.screening import MODERATION_EDITOR, Verdict, split_censored
from hearth_content.search import service as search
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.markdown import render_markdown
from servicekit.pagination import PageParams, after_id
from servicekit.problems import Problem, conflict, forbidden, not_found
from servicekit.readmodel import apply_snapshot
from servicekit.runtime import ServiceRuntime

log = logging.getLogger(__name__)


# --- Posts ------------------------------------------------------------------------------------


async def submit_post(
    *, uow: UnitOfWork, community_id: uuid.UUID, data: PostCreate, actor: Principal
) -> Post:
    """Submit a post for review as an active, unmuted member of the community."""
    await _community_access(uow, community_id, actor)  # 404 for a private community
    membership = await guards.writer(uow, community_id, actor)
    runs_it = actor.is_staff or membership.role in COMMUNITY_ADMIN_ROLES
    if data.kind == PostKind.announcement and not runs_it:
        raise forbidden("only staff and the community's admins may post announcements")
    if data.partner_name is not None and not runs_it:
        raise forbidden("only staff and the community's admins may publish partner content")
    authorship = (
        PostAuthorship.partner
        if data.partner_name is not None
        else PostAuthorship.staff
        if runs_it
        else PostAuthorship.member
    )
    post = Post.model_validate(
        data,
        update={
            "community_id": community_id,
            "author_id": actor.subject,
            "authorship": authorship,
            "body_html": render_markdown(data.body),
        },
    )
    # The human stages this post will need once screening passes it (review off: none).
    post.review_stage = await review.first_stage(uow, post, actor, membership)
    uow.session.add(post)
    await record_submitted(uow, post)
    await uow.commit()
    return post


async def record_submitted(uow: UnitOfWork, post: Post) -> None:
    """Index and announce a (re)submission: moderation screens it, search finds it."""
    await search.index_post(uow, post)
    await uow.record(
        PostSubmitted(
            post_id=post.id,
            community_id=post.community_id,
            author_id=post.author_id,
            title=post.title,
            body=post.body,
            format=post.format,
            url=post.url,
            submitted_at=post.submitted_at,
            round=post.review_round,
        ),
        subject=str(post.id),
    )


async def get_post(*, uow: UnitOfWork, post_id: uuid.UUID, actor: Principal) -> Post:
    """A post the actor may read; anything else is reported as missing, not as forbidden."""
    post = await uow.session.get(Post, post_id)
    if post is None:
        raise not_found("post", post_id)
    if actor.is_staff:
        return post
    membership = await _active_membership(uow, post.community_id, actor.subject)
    if post.deleted_at is not None:
        raise not_found("post", post_id)  # kept for moderation (staff), gone for everyone else
    if membership is not None and (
        membership.role in COMMUNITY_STAFF_ROLES
        or post.status == PostStatus.published
        or post.author_id == actor.subject
    ):
        if post.shared_from_id is not None:
            # A share is visible only where its original is: re-check the original for this reader.
            try:
                await _readable_original(uow, post.shared_from_id)
            except Problem:
                raise not_found("post", post_id) from None
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
            or_(col(Post.status) == PostStatus.published, col(Post.author_id) == actor.subject),
            col(Post.deleted_at).is_(None),
            # A share is listed only while its original is still out (published, not deleted).
            or_(
                col(Post.shared_from_id).is_(None), col(Post.shared_from_id).in_(_live_originals())
            ),
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
    verdict: Verdict | None = None,
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
    verdict = verdict or Verdict(hold=decision == "held")
    if verdict.hold:
        decision = "held"
        reasons = list(reasons) or ["screening"]
    await _apply_marks(uow, post, verdict, screening_id, now)
    event: PostPublished | PostScheduled | PostHeld | None
    if decision == "approved" and review.needs_review(post):
        # Screening first, then the community's human stages (hearth_content.review).
        post.status = PostStatus.in_review
        event = None
    elif decision == "approved":
        event = _release_event(post, now, screening_id)
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
    if event is not None:
        if not isinstance(event, PostHeld):
            column = await calendar.column_of(uow, post.id)
            event = event.model_copy(update={"column_id": column})
        await uow.record(event, subject=str(post.id))
    return post


async def _apply_marks(
    uow: UnitOfWork, post: Post, verdict: Verdict, screening_id: uuid.UUID, now: datetime
) -> None:
    """Censor, flag and tag a screened post as the verdict says (hearth_content.screening)."""
    if verdict.censored_text is not None:
        title, body = split_censored(verdict.censored_text, post.title)
        title = title.strip() or post.title
        changes: dict[str, dict[str, str | None]] = {}
        for field, new in (("title", title), ("body", body)):
            if new != getattr(post, field):
                changes[field] = {"from": getattr(post, field), "to": new}
                setattr(post, field, new)
        if changes:
            # The text as written stays in the revision: moderation's evidence.
            uow.session.add(
                PostRevision(
                    post_id=post.id,
                    number=post.revision,
                    editor_id=MODERATION_EDITOR,
                    edited_at=now,
                    changes=changes,
                    note=f"censored by screening {screening_id}",
                )
            )
            post.revision += 1
            post.body_html = render_markdown(post.body)
            await search.index_post(uow, post)
            # Announced like an edit, so the items read model, search and metrics see the change.
            await uow.record(
                PostEdited(
                    post_id=post.id,
                    community_id=post.community_id,
                    author_id=post.author_id,
                    editor_id=MODERATION_EDITOR,
                    revision=post.revision,
                    changed=sorted(changes),
                    edited_at=now,
                ),
                subject=str(post.id),
            )
    if verdict.flag:
        post.flagged = True
    if verdict.tags:
        slugs = await calendar.upsert_tags(uow, post.community_id, verdict.tags)
        post.tags = sorted(set(post.tags) | set(slugs))


async def release(
    uow: UnitOfWork, post: Post, now: datetime, screening_id: uuid.UUID | None
) -> None:
    """Publish a post that passed review now, or schedule it for its calendar slot."""
    uow.session.add(post)
    event = _release_event(post, now, screening_id).model_copy(
        update={"column_id": await calendar.column_of(uow, post.id)}
    )
    await uow.record(event, subject=str(post.id))


def _release_event(
    post: Post, now: datetime, screening_id: uuid.UUID | None
) -> PostPublished | PostScheduled:
    if post.publish_at is not None and _aware(post.publish_at) > now:
        # Passed review before its calendar slot: the scheduled publisher releases it then.
        post.status = PostStatus.scheduled
        return PostScheduled(
            post_id=post.id,
            community_id=post.community_id,
            author_id=post.author_id,
            title=post.title,
            format=post.format,
            screening_id=screening_id,
            publish_at=_aware(post.publish_at),
        )
    return _publish(post, now, screening_id)


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
            event = _publish(post, now, post.screening_id).model_copy(
                update={"column_id": await calendar.column_of(uow, post.id)}
            )
            session.add(post)
            await uow.record(event, subject=str(post.id))
        await uow.commit()
    return len(posts)


def _publish(post: Post, now: datetime, screening_id: uuid.UUID | None) -> PostPublished:
    """Mark a post published now; the event announcing it."""
    post.status = PostStatus.published
    post.published_at = now
    rescore(post)
    return PostPublished(
        post_id=post.id,
        community_id=post.community_id,
        author_id=post.author_id,
        title=post.title,
        format=post.format,
        screening_id=screening_id,
        published_at=now,
    )


async def edit_post(
    *, uow: UnitOfWork, post_id: uuid.UUID, data: PostUpdate, actor: Principal
) -> Post:
    """Edit a post as its author or staff; the previous values go into a revision."""
    post = await _post_for_update(uow, post_id, actor)
    if post.author_id != actor.subject and not await _runs_community(uow, post, actor):
        raise forbidden("only the author and staff may edit a post")
    if post.shared_from_id is not None:
        raise conflict("share-not-editable", "a share has no content of its own to edit")
    changes: dict[str, dict[str, str | None]] = {}
    for field in ("title", "body", "url"):
        new = getattr(data, field)
        if field in data.model_fields_set and new != getattr(post, field):
            if field == "url" and post.format == "link" and new is None:
                raise Problem(422, "url-required", "Unprocessable Content", "this post needs a url")
            if field == "url" and post.format == "text" and new is not None:
                raise Problem(422, "no-url", "Unprocessable Content", "a text post has no url")
            if field == "body" and post.format == "text" and not (new or "").strip():
                raise Problem(422, "body-required", "Unprocessable Content", "needs a body")
            if field in ("title", "body") and new is None:
                raise Problem(422, "required", "Unprocessable Content", f"{field} may not be null")
            changes[field] = {"from": getattr(post, field), "to": new}
            setattr(post, field, new)
    if not changes:
        return post
    now = utcnow()
    uow.session.add(
        PostRevision(
            post_id=post.id,
            number=post.revision,
            editor_id=actor.subject,
            edited_at=now,
            changes=changes,
            note=data.note,
        )
    )
    post.revision += 1
    post.edited_at = now
    post.body_html = render_markdown(post.body)
    uow.session.add(post)
    await search.index_post(uow, post)
    await uow.record(
        PostEdited(
            post_id=post.id,
            community_id=post.community_id,
            author_id=post.author_id,
            editor_id=actor.subject,
            revision=post.revision,
            changed=sorted(changes),
            edited_at=now,
        ),
        subject=str(post.id),
    )
    await uow.commit()
    return post


async def list_revisions(
    *, uow: UnitOfWork, post_id: uuid.UUID, actor: Principal
) -> list[PostRevision]:
    """A post's revisions, oldest first, for its author and staff."""
    post = await get_post(uow=uow, post_id=post_id, actor=actor)
    if post.author_id != actor.subject and not await _runs_community(uow, post, actor):
        raise forbidden("only the author and staff may read a post's revisions")
    stmt = (
        select(PostRevision)
        .where(PostRevision.post_id == post_id)
        .order_by(col(PostRevision.number))
    )
    return list((await uow.session.exec(stmt)).all())


async def delete_post(*, uow: UnitOfWork, post_id: uuid.UUID, actor: Principal) -> None:
    """Soft-delete a post as its author or staff: hidden from members, kept for moderation."""
    post = await _post_for_update(uow, post_id, actor)
    if post.author_id != actor.subject and not await _runs_community(uow, post, actor):
        raise forbidden("only the author and staff may delete a post")
    if post.deleted_at is not None:
        return
    now = utcnow()
    post.deleted_at = now
    post.deleted_by = actor.subject
    post.pin_order = None
    uow.session.add(post)
    if post.shared_from_id is not None:
        original = await uow.session.get(Post, post.shared_from_id, with_for_update=True)
        if original is not None and original.share_count > 0:
            original.share_count -= 1
            rescore(original)
            uow.session.add(original)
    await uow.record(
        PostDeleted(
            post_id=post.id,
            community_id=post.community_id,
            author_id=post.author_id,
            deleted_by=actor.subject,
            deleted_at=now,
        ),
        subject=str(post.id),
    )
    await uow.commit()


async def set_pin(
    *, uow: UnitOfWork, post_id: uuid.UUID, order: int | None, actor: Principal
) -> Post:
    """Pin a published post in its community at `order` (None unpins); staff and admins."""
    post = await _post_for_update(uow, post_id, actor)
    await _require_runs(uow, post, actor, "pin posts")
    if order is not None and post.status != PostStatus.published:
        raise conflict("not-published", "only a published post can be pinned")
    if post.pin_order == order:
        return post
    post.pin_order = order
    uow.session.add(post)
    await uow.record(
        PostPinned(
            post_id=post.id,
            community_id=post.community_id,
            author_id=post.author_id,
            pinned=order is not None,
            order=order,
            actor_id=actor.subject,
            at=utcnow(),
        ),
        subject=str(post.id),
    )
    await uow.commit()
    return post


async def list_pinned(*, uow: UnitOfWork, community_id: uuid.UUID, actor: Principal) -> list[Post]:
    """The community's pinned posts in their order (members and staff)."""
    _, membership = await _community_access(uow, community_id, actor)
    if membership is None and not actor.is_staff:
        raise forbidden("only members of this community may list its posts")
    stmt = (
        select(Post)
        .where(
            Post.community_id == community_id,
            col(Post.pin_order).is_not(None),
            col(Post.deleted_at).is_(None),
            col(Post.status) == PostStatus.published,
        )
        .order_by(col(Post.pin_order), col(Post.id).desc())
    )
    return list((await uow.session.exec(stmt)).all())


async def set_flags(
    *,
    uow: UnitOfWork,
    post_id: uuid.UUID,
    actor: Principal,
    featured: bool | None = None,
    comments_locked: bool | None = None,
) -> Post:
    """Feature a post or lock its comments: staff, the community's admins and owner."""
    post = await _post_for_update(uow, post_id, actor)
    await _require_runs(uow, post, actor, "feature posts or lock comments")
    if featured is not None:
        post.featured = featured
    if comments_locked is not None:
        post.comments_locked = comments_locked
    uow.session.add(post)
    await uow.commit()
    return post


async def share_post(
    *, uow: UnitOfWork, post_id: uuid.UUID, to_community_id: uuid.UUID, actor: Principal
) -> Post:
    """Share a published post into another community where the sharer is an active member."""
    original = await get_post(uow=uow, post_id=post_id, actor=actor)
    if original.shared_from_id is not None:
        # Share the original, not a share of it: one level, one count.
        original = await get_post(uow=uow, post_id=original.shared_from_id, actor=actor)
    await _readable_original(uow, original.id)
    if to_community_id == original.community_id:
        raise conflict("same-community", "the post is already in that community")
    await _community_access(uow, to_community_id, actor)  # 404 for a private community
    await guards.writer(uow, to_community_id, actor)
    now = utcnow()
    share = Post(
        community_id=to_community_id,
        author_id=actor.subject,
        title=original.title,
        body="",
        body_html="",
        format=original.format,
        kind=original.kind,
        url=original.url,
        authorship=PostAuthorship.member,
        # A share adds no content of its own, so it needs no review: it is out at once.
        status=PostStatus.published,
        published_at=now,
        shared_from_id=original.id,
    )
    rescore(share)
    uow.session.add(share)
    locked = await uow.session.get(Post, original.id, with_for_update=True)
    assert locked is not None
    locked.share_count += 1
    rescore(locked)
    uow.session.add(locked)
    await uow.record(
        PostShared(
            post_id=original.id,
            share_id=share.id,
            community_id=original.community_id,
            to_community_id=to_community_id,
            author_id=original.author_id,
            sharer_id=actor.subject,
            shared_at=now,
        ),
        subject=str(original.id),
    )
    await uow.commit()
    return share


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


# Community roles that run a community: pin, feature, lock comments, announce, edit and delete.
COMMUNITY_ADMIN_ROLES = frozenset({CommunityRole.owner, CommunityRole.admin})


async def _post_for_update(uow: UnitOfWork, post_id: uuid.UUID, actor: Principal) -> Post:
    """The post, locked, if the actor may read it (else 404, like reading it)."""
    await get_post(uow=uow, post_id=post_id, actor=actor)
    post = await uow.session.get(Post, post_id, with_for_update=True, populate_existing=True)
    if post is None or (post.deleted_at is not None and not actor.is_staff):
        raise not_found("post", post_id)
    return post


async def _runs_community(uow: UnitOfWork, post: Post, actor: Principal) -> bool:
    """Platform staff, or an owner or admin of the post's community."""
    if actor.is_staff:
        return True
    membership = await _active_membership(uow, post.community_id, actor.subject)
    return membership is not None and membership.role in COMMUNITY_ADMIN_ROLES


async def _require_runs(uow: UnitOfWork, post: Post, actor: Principal, what: str) -> None:
    if not await _runs_community(uow, post, actor):
        raise forbidden(f"only staff and the community's admins may {what}")


async def _readable_original(uow: UnitOfWork, original_id: uuid.UUID) -> Post:
    """The original of a share, if its visibility lets it travel: published, not deleted, public."""
    original = await uow.session.get(Post, original_id)
    if original is None or original.deleted_at is not None:
        raise not_found("post", original_id)
    community = await uow.session.get(Community, original.community_id)
    if original.status != PostStatus.published or community is None:
        raise not_found("post", original_id)
    if community.visibility != "public":
        # A private community's post never leaves it: shares of it are not shown elsewhere.
        raise Problem(
            403, "not-shareable", "Forbidden", "posts of a private community cannot be shared"
        )
    return original


def _live_originals() -> Any:
    """Ids of posts a share may still point at: published and not deleted."""
    original = aliased(Post)
    return select(original.id).where(
        original.status == PostStatus.published, col(original.deleted_at).is_(None)
    )


_aware = guards.aware
