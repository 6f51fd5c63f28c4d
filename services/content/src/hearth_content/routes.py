"""Content's HTTP routes (served at /, public through the gateway at /api/content)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from hearth_content import service
from hearth_content.models import (
    PinRequest,
    PostCreate,
    PostPublic,
    PostRevisionPublic,
    PostStatus,
    PostUpdate,
    ShareRequest,
)
from hearth_content.ranking import service as ranking
from servicekit.deps import RuntimeDep, UnitOfWorkDep
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
async def get_post(
    post_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal, runtime: RuntimeDep
) -> PostPublic:
    """One post the caller may read (a view: counted once per member per day)."""
    post = await service.get_post(uow=uow, post_id=post_id, actor=actor)
    ranking.saw(runtime, post, actor)
    return PostPublic.model_validate(post, from_attributes=True)


def _public(post: object) -> PostPublic:
    return PostPublic.model_validate(post, from_attributes=True)


@router.patch("/posts/{post_id}")
async def edit_post(
    post_id: uuid.UUID, body: PostUpdate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> PostPublic:
    """Edit a post (its author, staff, the community's admins); the old values become a revision."""
    return _public(await service.edit_post(uow=uow, post_id=post_id, data=body, actor=actor))


@router.get("/posts/{post_id}/revisions")
async def list_revisions(
    post_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> list[PostRevisionPublic]:
    """A post's revision history, oldest first (its author and staff)."""
    rows = await service.list_revisions(uow=uow, post_id=post_id, actor=actor)
    return [PostRevisionPublic.model_validate(r, from_attributes=True) for r in rows]


@router.delete("/posts/{post_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_post(post_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal) -> Response:
    """Delete a post (soft: hidden, kept for moderation); its author or staff."""
    await service.delete_post(uow=uow, post_id=post_id, actor=actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/posts/{post_id}/pin")
async def pin_post(
    post_id: uuid.UUID, body: PinRequest, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> PostPublic:
    """Pin a published post in its community at a place (staff, community admins, owner)."""
    return _public(await service.set_pin(uow=uow, post_id=post_id, order=body.order, actor=actor))


@router.delete("/posts/{post_id}/pin")
async def unpin_post(post_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal) -> PostPublic:
    """Unpin a post (staff, community admins, owner)."""
    return _public(await service.set_pin(uow=uow, post_id=post_id, order=None, actor=actor))


@router.get("/communities/{community_id}/pinned")
async def list_pinned(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> list[PostPublic]:
    """The community's pinned posts in their order."""
    rows = await service.list_pinned(uow=uow, community_id=community_id, actor=actor)
    return [_public(p) for p in rows]


@router.put("/posts/{post_id}/featured")
async def feature_post(
    post_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> PostPublic:
    """Feature a post (staff, community admins, owner)."""
    return _public(await service.set_flags(uow=uow, post_id=post_id, actor=actor, featured=True))


@router.delete("/posts/{post_id}/featured")
async def unfeature_post(
    post_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> PostPublic:
    """Stop featuring a post."""
    return _public(await service.set_flags(uow=uow, post_id=post_id, actor=actor, featured=False))


@router.put("/posts/{post_id}/comments-lock")
async def lock_comments(
    post_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> PostPublic:
    """Lock a post's comments (staff, community admins, owner)."""
    return _public(
        await service.set_flags(uow=uow, post_id=post_id, actor=actor, comments_locked=True)
    )


@router.delete("/posts/{post_id}/comments-lock")
async def unlock_comments(
    post_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> PostPublic:
    """Unlock a post's comments."""
    return _public(
        await service.set_flags(uow=uow, post_id=post_id, actor=actor, comments_locked=False)
    )


@router.post("/posts/{post_id}/shares", status_code=status.HTTP_201_CREATED)
async def share_post(
    post_id: uuid.UUID, body: ShareRequest, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> PostPublic:
    """Share a published post of a public community into another community you belong to."""
    share = await service.share_post(
        uow=uow, post_id=post_id, to_community_id=body.community_id, actor=actor
    )
    return _public(share)
