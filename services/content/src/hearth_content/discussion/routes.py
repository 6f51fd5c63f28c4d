"""Discussion routes: comments and reactions on posts."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from hearth_content.discussion import service
from hearth_content.discussion.models import (
    CommentCreate,
    CommentEdit,
    CommentPublic,
    ReactionCounts,
    ReactionCreate,
    ReactionKind,
)
from servicekit.deps import UnitOfWorkDep
from servicekit.identity import CurrentPrincipal

router = APIRouter(tags=["discussion"])


@router.post("/posts/{post_id}/comments", status_code=status.HTTP_201_CREATED)
async def create_comment(
    post_id: uuid.UUID, body: CommentCreate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> CommentPublic:
    """Comment on a post, or reply to a comment (`parent_id`); active unmuted members."""
    comment = await service.create_comment(uow=uow, post_id=post_id, data=body, actor=actor)
    return CommentPublic.model_validate(comment, from_attributes=True)


@router.get("/posts/{post_id}/comments")
async def list_comments(
    post_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> list[CommentPublic]:
    """A post's comments in thread order (each followed by its replies, oldest first)."""
    rows = await service.list_comments(uow=uow, post_id=post_id, actor=actor)
    return [CommentPublic.model_validate(c, from_attributes=True) for c in rows]


@router.patch("/comments/{comment_id}")
async def edit_comment(
    comment_id: uuid.UUID, body: CommentEdit, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> CommentPublic:
    """Edit one's own comment."""
    comment = await service.edit_comment(uow=uow, comment_id=comment_id, data=body, actor=actor)
    return CommentPublic.model_validate(comment, from_attributes=True)


@router.delete("/comments/{comment_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_comment(
    comment_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> Response:
    """Soft-delete a comment (its author or the community's moderators)."""
    await service.delete_comment(uow=uow, comment_id=comment_id, actor=actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/posts/{post_id}/reactions")
async def add_reaction(
    post_id: uuid.UUID, body: ReactionCreate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> ReactionCounts:
    """Add the caller's reaction of a kind (idempotent: twice leaves one)."""
    await service.react(uow=uow, post_id=post_id, kind=body.kind, actor=actor)
    counts, mine = await service.reaction_counts(uow=uow, post_id=post_id, actor=actor)
    return ReactionCounts(post_id=post_id, counts=counts, mine=mine)


@router.delete("/posts/{post_id}/reactions/{kind}")
async def remove_reaction(
    post_id: uuid.UUID, kind: ReactionKind, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> ReactionCounts:
    """Remove the caller's reaction of a kind (idempotent)."""
    await service.unreact(uow=uow, post_id=post_id, kind=kind, actor=actor)
    counts, mine = await service.reaction_counts(uow=uow, post_id=post_id, actor=actor)
    return ReactionCounts(post_id=post_id, counts=counts, mine=mine)


@router.get("/posts/{post_id}/reactions")
async def get_reactions(
    post_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> ReactionCounts:
    """Reaction counts of a post the caller may read."""
    counts, mine = await service.reaction_counts(uow=uow, post_id=post_id, actor=actor)
    return ReactionCounts(post_id=post_id, counts=counts, mine=mine)
