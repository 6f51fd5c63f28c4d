"""The moderators' list of flagged content."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from pydantic import BaseModel

from hearth_content.discussion.models import CommentPublic
from hearth_content.flags import service
from hearth_content.models import PostPublic
from servicekit.deps import UnitOfWorkDep
from servicekit.identity import CurrentPrincipal

router = APIRouter(tags=["moderation"])


class FlaggedPublic(BaseModel):
    """The newest flagged posts and comments of a community (at most 100 of each)."""

    posts: list[PostPublic]
    comments: list[CommentPublic]


@router.get("/communities/{community_id}/flagged")
async def flagged(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> FlaggedPublic:
    """Posts and comments screening flagged, newest first (the community's staff)."""
    post_rows, comment_rows = await service.flagged(uow=uow, community_id=community_id, actor=actor)
    return FlaggedPublic(
        posts=[PostPublic.model_validate(p, from_attributes=True) for p in post_rows],
        comments=[CommentPublic.model_validate(c, from_attributes=True) for c in comment_rows],
    )
