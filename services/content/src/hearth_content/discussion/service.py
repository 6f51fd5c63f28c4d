"""Discussion use cases: comment, reply, edit, delete, react; routes' functions commit."""

from __future__ import annotations

import logging
import re
import uuid
from collections import defaultdict

from sqlalchemy import delete, func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select

from hearth_content import guards
from hearth_content import service as posts
from hearth_content.calendar import service as calendar
from hearth_content.discussion.models import (
    MAX_DEPTH,
    Comment,
    CommentCreate,
    CommentEdit,
    CommentStatus,
    Reaction,
    ReactionKind,
)
from hearth_content.events import (
    CommentCreated,
    CommentDeleted,
    CommentEdited,
    MentionCreated,
    ReactionAdded,
    ReactionRemoved,
)
from hearth_content.models import (
    COMMUNITY_STAFF_ROLES,
    Membership,
    MembershipStatus,
    Post,
    PostStatus,
)
from hearth_content.ranking.score import rescore
from hearth_content.screening import REPORTED, Verdict, censored_comment_body
from hearth_content.search import service as search
from servicekit.db import affected_rows
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow, uuid7
from servicekit.problems import Problem, not_found

# Mentions name the member's id (clients resolve display names to ids while typing).
MENTION = re.compile(
    r"@([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
)
MAX_MENTIONS = 20
log = logging.getLogger(__name__)
THREAD_MAX = 1000


async def _participant(uow: UnitOfWork, post: Post, actor: Principal) -> Membership:
    """The actor's membership if they may write on the post; 403/409 problems say why not."""
    membership = await guards.writer(uow, post.community_id, actor)
    if post.status != PostStatus.published:
        raise Problem(409, "post-not-published", "Conflict", "only published posts take comments")
    return membership


async def create_comment(
    *, uow: UnitOfWork, post_id: uuid.UUID, data: CommentCreate, actor: Principal
) -> Comment:
    """Comment on a post the actor may read, or reply to a comment on it (depth capped)."""
    post = await posts.get_post(uow=uow, post_id=post_id, actor=actor)
    await _participant(uow, post, actor)
    depth = 0
    if data.parent_id is not None:
        parent = await uow.session.get(Comment, data.parent_id)
        if parent is None or parent.post_id != post.id:
            raise not_found("comment", data.parent_id)
        if parent.depth + 1 > MAX_DEPTH:
            raise Problem(
                422, "thread-too-deep", "Unprocessable", f"replies nest at most {MAX_DEPTH} deep"
            )
        depth = parent.depth + 1
    locked = await uow.session.get(Post, post.id, with_for_update=True, populate_existing=True)
    assert locked is not None
    post = locked
    comment = Comment(
        post_id=post.id,
        community_id=post.community_id,
        author_id=actor.subject,
        parent_id=data.parent_id,
        depth=depth,
        body=data.body,
    )
    uow.session.add(comment)
    first = _count_reply(post, comment)
    uow.session.add(post)
    await _index(uow, comment, post)
    await uow.record(
        CommentCreated(
            comment_id=comment.id,
            post_id=post.id,
            community_id=post.community_id,
            author_id=actor.subject,
            parent_id=comment.parent_id,
            body=comment.body,
            created_at=comment.created_at,
            column_id=await calendar.column_of(uow, post.id),
            first_response_seconds=first,
        ),
        subject=str(comment.id),
    )
    await _record_mentions(uow, comment)
    await uow.commit()
    return comment


def _count_reply(post: Post, comment: Comment) -> int | None:
    """Count a new comment on its (locked) post; the seconds to first response if it is that.

    The first response is the first comment by anyone but the post's author; it is recorded
    once, when the comment is written (a later hold or delete of it does not undo it).
    """
    post.comment_count += 1
    first: int | None = None
    if (
        comment.author_id != post.author_id
        and post.first_response_at is None
        and post.published_at is not None
    ):
        post.first_response_at = comment.created_at
        post.first_response_by = comment.author_id
        since = comment.created_at - posts._aware(post.published_at)
        first = post.first_response_seconds = max(0, int(since.total_seconds()))
    rescore(post)
    return first


async def _index(uow: UnitOfWork, comment: Comment, post: Post) -> None:
    """Comments are searchable under their post's community, format and review state."""
    await search.index(
        uow,
        doc_id=comment.id,
        kind="comment",
        post_id=post.id,
        community_id=post.community_id,
        author_id=comment.author_id,
        fmt=str(post.format),
        created_at=comment.created_at,
        title=post.title,
        body=comment.body,
    )


async def _record_mentions(uow: UnitOfWork, comment: Comment) -> None:
    """One mention.created per distinct active member named in the comment (not the author)."""
    named = {uuid.UUID(m) for m in MENTION.findall(comment.body)} - {comment.author_id}
    if not named:
        return
    stmt = select(Membership).where(
        col(Membership.community_id) == comment.community_id,
        col(Membership.user_id).in_(sorted(named)[:MAX_MENTIONS]),
        col(Membership.status) == MembershipStatus.active,
    )
    for member in (await uow.session.exec(stmt)).all():
        await uow.record(
            MentionCreated(
                comment_id=comment.id,
                post_id=comment.post_id,
                community_id=comment.community_id,
                author_id=comment.author_id,
                mentioned_id=member.user_id,
                created_at=comment.created_at,
            ),
            subject=str(comment.id),
        )


async def apply_comment_screening(
    *,
    uow: UnitOfWork,
    comment_id: uuid.UUID,
    screening_id: uuid.UUID,
    decision: str,
    reasons: list[str],
    verdict: Verdict,
) -> Comment | None:
    """Act on moderation's verdict on a comment (shown at once, hidden if the verdict holds it).

    Each version of a comment (creation, every edit) is screened; the verdict that arrives
    last decides, so a clean edit of a held comment shows it again.
    """
    comment = await uow.session.get(Comment, comment_id, with_for_update=True)
    if comment is None:
        log.warning("screening %s names unknown comment %s; ignored", screening_id, comment_id)
        return None
    if comment.deleted_at is not None:
        return None
    comment.screening_id = screening_id
    post = await uow.session.get(Post, comment.post_id, with_for_update=True)
    if verdict.censored_text is not None:
        body = censored_comment_body(verdict.censored_text, comment.body)
        if body != comment.body:
            comment.original_body = comment.original_body or comment.body
            comment.body = body
    if verdict.flag:
        comment.flagged = True
    if verdict.tags:
        slugs = await calendar.upsert_tags(uow, comment.community_id, verdict.tags)
        comment.tags = sorted(set(comment.tags) | set(slugs))
    hold = verdict.hold or decision == "held"
    if hold and comment.status != CommentStatus.held:
        comment.status = CommentStatus.held
        comment.hold_reasons = list(reasons) or ["screening"]
        await search.unindex(uow, comment.id)
        if post is not None:
            post.comment_count = max(0, post.comment_count - 1)
    elif not hold and decision == "approved" and comment.status == CommentStatus.held:
        comment.status = CommentStatus.visible
        comment.hold_reasons = []
        if post is not None:
            post.comment_count += 1
    if comment.status == CommentStatus.visible and post is not None:
        await _index(uow, comment, post)  # the censored text, if censored
    if post is not None:
        rescore(post)
        uow.session.add(post)
    uow.session.add(comment)
    return comment


async def list_comments(*, uow: UnitOfWork, post_id: uuid.UUID, actor: Principal) -> list[Comment]:
    """A post's comments in thread order: each comment followed by its replies, oldest first.

    A held comment keeps its place; only its author and staff see its body.
    """
    post = await posts.get_post(uow=uow, post_id=post_id, actor=actor)
    staff = actor.is_staff or await _moderates(uow, post.community_id, actor)
    stmt = (
        select(Comment)
        .where(col(Comment.post_id) == post.id)
        .order_by(col(Comment.id))  # uuid7: creation order
        .limit(THREAD_MAX)
    )
    rows = list((await uow.session.exec(stmt)).all())
    children: dict[uuid.UUID | None, list[Comment]] = defaultdict(list)
    for row in rows:
        children[row.parent_id].append(row)
    ordered: list[Comment] = []
    stack = list(reversed(children[None]))
    while stack:
        node = stack.pop()
        ordered.append(node)
        stack.extend(reversed(children[node.id]))
    for row in ordered:
        if row.status == CommentStatus.held and not staff and row.author_id != actor.subject:
            uow.session.expunge(row)  # a read-only copy: the masked body is never written
            row.body = ""
            row.tags = []
            row.rejection_reason = None
    return ordered


async def _moderates(uow: UnitOfWork, community_id: uuid.UUID, actor: Principal) -> bool:
    membership = await uow.session.get(Membership, (community_id, actor.subject))
    return (
        membership is not None
        and membership.status == MembershipStatus.active
        and membership.role in COMMUNITY_STAFF_ROLES
    )


async def _own_comment(uow: UnitOfWork, comment_id: uuid.UUID, actor: Principal) -> Comment:
    comment = await uow.session.get(Comment, comment_id, with_for_update=True)
    if comment is None or comment.deleted_at is not None:
        raise not_found("comment", comment_id)
    await posts.get_post(uow=uow, post_id=comment.post_id, actor=actor)  # must still read it
    return comment


async def edit_comment(
    *, uow: UnitOfWork, comment_id: uuid.UUID, data: CommentEdit, actor: Principal
) -> Comment:
    """Edit one's own comment; moderation screens the new body."""
    comment = await _own_comment(uow, comment_id, actor)
    if comment.author_id != actor.subject:
        raise Problem(403, "not-the-author", "Forbidden", "only the author may edit a comment")
    post = await uow.session.get(Post, comment.post_id)
    assert post is not None
    await _participant(uow, post, actor)
    comment.body = data.body
    comment.edited_at = utcnow()
    uow.session.add(comment)
    if comment.status == CommentStatus.visible:
        await _index(uow, comment, post)  # a held comment waits for its new verdict
    await uow.record(
        CommentEdited(
            comment_id=comment.id,
            post_id=comment.post_id,
            community_id=comment.community_id,
            author_id=comment.author_id,
            body=comment.body,
            edited_at=comment.edited_at,
        ),
        subject=str(comment.id),
    )
    await uow.commit()
    return comment


async def delete_comment(*, uow: UnitOfWork, comment_id: uuid.UUID, actor: Principal) -> None:
    """Soft-delete a comment: its author, or the community's staff."""
    comment = await _own_comment(uow, comment_id, actor)
    if comment.author_id != actor.subject and not actor.is_staff:
        membership = await uow.session.get(Membership, (comment.community_id, actor.subject))
        if (
            membership is None
            or membership.status != MembershipStatus.active
            or membership.role not in COMMUNITY_STAFF_ROLES
        ):
            raise Problem(
                403, "not-the-author", "Forbidden", "only the author or moderators may delete"
            )
    now = utcnow()
    comment.deleted_at = now
    comment.body = ""
    uow.session.add(comment)
    post = await uow.session.get(Post, comment.post_id, with_for_update=True)
    if post is not None and post.comment_count > 0:
        post.comment_count -= 1
        rescore(post)
        uow.session.add(post)
    await search.unindex(uow, comment.id)
    await uow.record(
        CommentDeleted(
            comment_id=comment.id,
            post_id=comment.post_id,
            community_id=comment.community_id,
            deleted_by=actor.subject,
            deleted_at=now,
        ),
        subject=str(comment.id),
    )
    await uow.commit()


async def react(
    *, uow: UnitOfWork, post_id: uuid.UUID, kind: ReactionKind, actor: Principal
) -> None:
    """Add the actor's reaction of this kind; idempotent (the unique constraint decides races)."""
    post = await posts.get_post(uow=uow, post_id=post_id, actor=actor)
    await _participant(uow, post, actor)
    values = {
        "id": uuid7(),
        "post_id": post.id,
        "member_id": actor.subject,
        "kind": str(kind),
        "created_at": utcnow(),
    }
    dialect = uow.session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(Reaction)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["post_id", "member_id", "kind"])
    )
    if affected_rows(await uow.session.execute(stmt)):
        await _count_reactions(uow, post.id, +1)
        await uow.record(
            ReactionAdded(
                post_id=post.id,
                community_id=post.community_id,
                post_author_id=post.author_id,
                column_id=await calendar.column_of(uow, post.id),
                member_id=actor.subject,
                kind=str(kind),
                reacted_at=values["created_at"],
            )
        )
    await uow.commit()


async def unreact(
    *, uow: UnitOfWork, post_id: uuid.UUID, kind: ReactionKind, actor: Principal
) -> None:
    """Remove the actor's reaction of this kind (absent is fine: idempotent)."""
    post = await posts.get_post(uow=uow, post_id=post_id, actor=actor)
    await _participant(uow, post, actor)
    removed = await uow.session.execute(
        delete(Reaction).where(
            col(Reaction.post_id) == post.id,
            col(Reaction.member_id) == actor.subject,
            col(Reaction.kind) == str(kind),
        )
    )
    if affected_rows(removed):
        await _count_reactions(uow, post.id, -1)
        await uow.record(
            ReactionRemoved(
                post_id=post.id,
                community_id=post.community_id,
                member_id=actor.subject,
                kind=str(kind),
                removed_at=utcnow(),
            )
        )
    await uow.commit()


async def _count_reactions(uow: UnitOfWork, post_id: uuid.UUID, delta: int) -> None:
    """Move a post's reaction counter (under its row lock) and its hot score with it."""
    post = await uow.session.get(Post, post_id, with_for_update=True, populate_existing=True)
    if post is None:
        return
    post.reaction_count = max(0, post.reaction_count + delta)
    rescore(post)
    uow.session.add(post)


async def reaction_counts(
    *, uow: UnitOfWork, post_id: uuid.UUID, actor: Principal
) -> tuple[dict[str, int], list[str]]:
    """Counts per kind on a post the actor may read, and the actor's own kinds."""
    post = await posts.get_post(uow=uow, post_id=post_id, actor=actor)
    stmt = (
        select(Reaction.kind, func.count())
        .where(col(Reaction.post_id) == post.id)
        .group_by(Reaction.kind)
    )
    counts = {str(k): int(n) for k, n in (await uow.session.exec(stmt)).all()}
    mine_stmt = select(Reaction.kind).where(
        col(Reaction.post_id) == post.id, col(Reaction.member_id) == actor.subject
    )
    mine = sorted(str(k) for k in (await uow.session.exec(mine_stmt)).all())
    return counts, mine


async def hide_comment(
    uow: UnitOfWork, *, comment_id: uuid.UUID, community_id: uuid.UUID, reason: str
) -> bool:
    """Take a visible comment out of members' sight (held with `reason`); caller commits."""
    comment = await uow.session.get(Comment, comment_id, with_for_update=True)
    if (
        comment is None
        or comment.community_id != community_id
        or comment.deleted_at is not None
        or comment.status != CommentStatus.visible
    ):
        return False
    comment.status = CommentStatus.held
    comment.hold_reasons = [reason]
    await search.unindex(uow, comment.id)
    post = await uow.session.get(Post, comment.post_id, with_for_update=True)
    if post is not None:
        post.comment_count = max(0, post.comment_count - 1)
        rescore(post)
        uow.session.add(post)
    uow.session.add(comment)
    return True


async def restore_comment(
    uow: UnitOfWork, *, comment_id: uuid.UUID, community_id: uuid.UUID, reason: str
) -> bool:
    """Show again a comment that `hide_comment` held for `reason` (never a screening hold)."""
    comment = await uow.session.get(Comment, comment_id, with_for_update=True)
    if (
        comment is None
        or comment.community_id != community_id
        or comment.deleted_at is not None
        or comment.status != CommentStatus.held
        or comment.hold_reasons != [reason]
    ):
        return False
    comment.status = CommentStatus.visible
    comment.hold_reasons = []
    post = await uow.session.get(Post, comment.post_id, with_for_update=True)
    if post is not None:
        post.comment_count += 1
        await _index(uow, comment, post)
        rescore(post)
        uow.session.add(post)
    uow.session.add(comment)
    return True


async def _held_comment(
    uow: UnitOfWork, comment_id: uuid.UUID, community_id: uuid.UUID
) -> Comment | None:
    comment = await uow.session.get(Comment, comment_id, with_for_update=True)
    if (
        comment is None
        or comment.community_id != community_id
        or comment.deleted_at is not None
        or comment.status != CommentStatus.held
    ):
        return None
    return comment


async def _show(uow: UnitOfWork, comment: Comment) -> None:
    comment.status = CommentStatus.visible
    comment.hold_reasons = []
    comment.rejection_reason = None
    post = await uow.session.get(Post, comment.post_id, with_for_update=True)
    if post is not None:
        post.comment_count += 1
        await _index(uow, comment, post)
        rescore(post)
        uow.session.add(post)
    uow.session.add(comment)


async def release_held_comment(
    uow: UnitOfWork, *, comment_id: uuid.UUID, community_id: uuid.UUID
) -> bool:
    """A moderator approved a comment screening held: shown again (caller commits)."""
    comment = await _held_comment(uow, comment_id, community_id)
    if comment is None or comment.hold_reasons == [REPORTED] or comment.rejection_reason:
        return False  # reports' holds are decided through item.restored; rejections by appeal
    await _show(uow, comment)
    return True


async def reject_held_comment(
    uow: UnitOfWork,
    *,
    comment_id: uuid.UUID,
    community_id: uuid.UUID,
    case_id: uuid.UUID,
    reason: str,
) -> bool:
    """A moderator rejected a held comment: it stays hidden, with the reason its author reads."""
    comment = await _held_comment(uow, comment_id, community_id)
    if comment is None or comment.hold_reasons == [REPORTED]:
        return False
    comment.rejection_reason = reason
    comment.moderation_case_id = case_id
    uow.session.add(comment)
    return True


async def restore_rejected_comment(
    uow: UnitOfWork, *, case_id: uuid.UUID, community_id: uuid.UUID
) -> bool:
    """An appeal lifted the rejection of a comment: shown again (caller commits)."""
    found = (
        await uow.session.exec(
            select(Comment).where(
                col(Comment.moderation_case_id) == case_id,
                col(Comment.community_id) == community_id,
            )
        )
    ).first()
    if found is None:
        return False
    comment = await _held_comment(uow, found.id, community_id)
    if comment is None or comment.rejection_reason is None:
        return False
    await _show(uow, comment)
    return True
