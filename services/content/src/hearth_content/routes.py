"""Content's HTTP routes (served at /, public through the gateway at /api/content)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from hearth_content import service
from hearth_content.models import PostCreate, PostPublic, PostStatus
from servicekit.deps import UnitOfWorkDep
from servicekit.identity import CurrentPrincipal
from servicekit.pagination import Page, PageDep, make_page

router = APIRouter(tags=["posts"])


@router.post("/communities/{community_id}/posts", status_code=status.HTTP_201_CREATED)
async def submit_post(
    community_id: uuid.UUID,
    body: PostCreate,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
) -> PostPublic:
    """Submit a post for review (active members; retries may carry an Idempotency-Key)."""
    post = await service.submit_post(uow=uow, community_id=community_id, data=body, actor=actor)
    return PostPublic.model_validate(post, from_attributes=True)


@router.get("/communities/{community_id}/posts")
async def list_posts(
    community_id: uuid.UUID,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
    page: PageDep,
    status: Annotated[PostStatus | None, Query()] = None,
) -> Page[PostPublic]:
    """Posts of a community, newest first: members see published posts and their own."""
    rows = await service.list_posts(
        uow=uow, community_id=community_id, actor=actor, status=status, page=page
    )
    items = [PostPublic.model_validate(p, from_attributes=True) for p in rows]
    return make_page(items, page.limit, lambda p: [str(p.id)])


@router.get("/posts/{post_id}")
async def get_post(post_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal) -> PostPublic:
    """One post the caller may read."""
    post = await service.get_post(uow=uow, post_id=post_id, actor=actor)
    return PostPublic.model_validate(post, from_attributes=True)
