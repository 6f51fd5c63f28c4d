"""Flagged posts and comments of a community, newest first, for its staff."""

from __future__ import annotations

import uuid

from sqlmodel import col, select

from hearth_content import service as posts
from hearth_content.discussion.models import Comment
from hearth_content.models import COMMUNITY_STAFF_ROLES, Post
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.problems import forbidden

FLAGGED_MAX = 100


async def flagged(
    *, uow: UnitOfWork, community_id: uuid.UUID, actor: Principal
) -> tuple[list[Post], list[Comment]]:
    """The newest flagged posts and comments (not deleted) of a community: its staff only."""
    _, membership = await posts._community_access(uow, community_id, actor)
    if not actor.is_staff and (membership is None or membership.role not in COMMUNITY_STAFF_ROLES):
        raise forbidden("only the community's staff see flagged content")
    post_rows = await uow.session.exec(
        select(Post)
        .where(
            col(Post.community_id) == community_id,
            col(Post.flagged).is_(True),
            col(Post.deleted_at).is_(None),
        )
        .order_by(col(Post.id).desc())
        .limit(FLAGGED_MAX)
    )
    comment_rows = await uow.session.exec(
        select(Comment)
        .where(
            col(Comment.community_id) == community_id,
            col(Comment.flagged).is_(True),
            col(Comment.deleted_at).is_(None),
        )
        .order_by(col(Comment.id).desc())
        .limit(FLAGGED_MAX)
    )
    return list(post_rows.all()), list(comment_rows.all())
