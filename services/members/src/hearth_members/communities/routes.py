"""Community routes: create, list, read, update, archive/restore (public at /api/members)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query, status

from hearth_members.communities import service
from hearth_members.communities.models import CommunityCreate, CommunityPublic, CommunityUpdate
from servicekit.deps import UnitOfWorkDep
from servicekit.identity import CurrentPrincipal, StaffDep
from servicekit.pagination import Page, PageDep, make_page

router = APIRouter(tags=["communities"])


C = "/communities/{community_id}"


def community_out(c: object) -> CommunityPublic:
    return CommunityPublic.model_validate(c, from_attributes=True)


@router.post("/communities", status_code=status.HTTP_201_CREATED)
async def create_community(
    body: CommunityCreate, uow: UnitOfWorkDep, actor: StaffDep
) -> CommunityPublic:
    """Create a community (platform admins and operators); the creator becomes its owner."""
    return community_out(await service.create_community(uow=uow, data=body, actor=actor))


@router.get("/communities")
async def list_communities(
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
    page: PageDep,
    include_archived: bool = Query(False),
) -> Page[CommunityPublic]:
    """Communities the caller may see."""
    rows = await service.list_communities(
        uow=uow, actor=actor, page=page, include_archived=include_archived
    )
    return make_page([community_out(c) for c in rows], page.limit, lambda c: [str(c.id)])


@router.get(C)
async def get_community(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> CommunityPublic:
    """One community (private ones: members and staff only)."""
    return community_out(
        await service.get_community(uow=uow, community_id=community_id, actor=actor)
    )


@router.patch(C)
async def update_community(
    community_id: uuid.UUID, body: CommunityUpdate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> CommunityPublic:
    """Change profile and settings (owner, admin)."""
    return community_out(
        await service.update_community(uow=uow, community_id=community_id, data=body, actor=actor)
    )


@router.post(C + "/archive")
async def archive_community(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> CommunityPublic:
    """Archive a community (owner, staff)."""
    return community_out(
        await service.set_archived(uow=uow, community_id=community_id, actor=actor, archived=True)
    )


@router.post(C + "/restore")
async def restore_community(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> CommunityPublic:
    """Restore an archived community (owner, staff)."""
    return community_out(
        await service.set_archived(uow=uow, community_id=community_id, actor=actor, archived=False)
    )
