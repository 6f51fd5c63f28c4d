"""Sanction routes: the ladder, imposing and lifting sanctions, a member's standing."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from hearth_moderation.sanctions import service
from hearth_moderation.sanctions.models import (
    LadderPublic,
    LadderUpdate,
    LiftRequest,
    SanctionCreate,
    SanctionPublic,
    SanctionStatus,
    Standing,
)
from servicekit.deps import UnitOfWorkDep
from servicekit.identity import CurrentPrincipal
from servicekit.pagination import Page, PageDep, make_page

router = APIRouter(tags=["sanctions"])


@router.get("/communities/{community_id}/sanctions/ladder")
async def get_ladder(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> LadderPublic:
    """The community's sanction ladder (its team and platform staff)."""
    ladder = await service.get_ladder(uow=uow, community_id=community_id, actor=actor)
    return LadderPublic.model_validate(ladder, from_attributes=True)


@router.patch("/communities/{community_id}/sanctions/ladder")
async def update_ladder(
    community_id: uuid.UUID, body: LadderUpdate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> LadderPublic:
    """Change the ladder: points per warning, their lifetime, the rungs, severities."""
    ladder = await service.update_ladder(uow=uow, community_id=community_id, data=body, actor=actor)
    return LadderPublic.model_validate(ladder, from_attributes=True)


@router.post("/communities/{community_id}/sanctions", status_code=201)
async def impose(
    community_id: uuid.UUID, body: SanctionCreate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> list[SanctionPublic]:
    """Sanction a member with a reason; returns it and any rung its points reached."""
    made = await service.impose(uow=uow, community_id=community_id, data=body, actor=actor)
    return [SanctionPublic.model_validate(s, from_attributes=True) for s in made]


@router.get("/communities/{community_id}/sanctions")
async def list_sanctions(
    community_id: uuid.UUID,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
    page: PageDep,
    user_id: Annotated[uuid.UUID | None, Query()] = None,
    status: Annotated[SanctionStatus | None, Query()] = None,
) -> Page[SanctionPublic]:
    """The community's sanctions, newest first (the team; a member: `user_id` = themselves)."""
    rows = await service.list_sanctions(
        uow=uow, community_id=community_id, user_id=user_id, status=status, page=page, actor=actor
    )
    items = [SanctionPublic.model_validate(s, from_attributes=True) for s in rows]
    return make_page(items, page.limit, lambda s: [str(s.id)])


@router.get("/communities/{community_id}/members/{user_id}/standing")
async def standing(
    community_id: uuid.UUID, user_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> Standing:
    """A member's active warning points and the sanctions in force."""
    return await service.standing(uow=uow, community_id=community_id, user_id=user_id, actor=actor)


@router.get("/sanctions/{sanction_id}")
async def get_sanction(
    sanction_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> SanctionPublic:
    """One sanction (the member concerned, the community's team, platform staff)."""
    sanction = await service.get_sanction(uow=uow, sanction_id=sanction_id, actor=actor)
    return SanctionPublic.model_validate(sanction, from_attributes=True)


@router.post("/sanctions/{sanction_id}/lift")
async def lift(
    sanction_id: uuid.UUID, body: LiftRequest, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> SanctionPublic:
    """Lift a sanction in force (the community's team); members restores what it took."""
    sanction = await service.lift(uow=uow, sanction_id=sanction_id, reason=body.reason, actor=actor)
    return SanctionPublic.model_validate(sanction, from_attributes=True)
