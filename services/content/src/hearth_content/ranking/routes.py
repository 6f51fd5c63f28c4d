"""Ranking routes: a community's hot posts and its unanswered questions and discussions."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from hearth_content.models import PostPublic
from hearth_content.ranking import service
from servicekit.deps import UnitOfWorkDep
from servicekit.identity import CurrentPrincipal
from servicekit.pagination import Page, PageDep, make_page

router = APIRouter(tags=["ranking"])


@router.get("/communities/{community_id}/hot")
async def hot_posts(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal, page: PageDep
) -> Page[PostPublic]:
    """Published posts by hot score (engagement with time decay), highest first (members)."""
    rows = await service.hot_posts(uow=uow, community_id=community_id, actor=actor, page=page)
    items = [PostPublic.model_validate(p, from_attributes=True) for p in rows]
    return make_page(items, page.limit, lambda p: [repr(p.hot_score), str(p.id)])


@router.get("/communities/{community_id}/unanswered")
async def unanswered_posts(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal, page: PageDep
) -> Page[PostPublic]:
    """Published questions and discussions with no reply but their author's, newest first."""
    rows = await service.unanswered_posts(
        uow=uow, community_id=community_id, actor=actor, page=page
    )
    items = [PostPublic.model_validate(p, from_attributes=True) for p in rows]
    return make_page(items, page.limit, lambda p: [str(p.id)])
