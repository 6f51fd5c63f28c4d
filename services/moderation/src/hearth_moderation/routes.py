"""Moderation's HTTP routes (served at /, public through the gateway at /api/moderation)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from hearth_moderation import service
from hearth_moderation.models import ScreeningDecision, ScreeningPublic
from servicekit.deps import UnitOfWorkDep
from servicekit.identity import StaffDep
from servicekit.pagination import Page, PageDep, make_page

router = APIRouter(tags=["screenings"])
# Screenings show matched terms and authors across communities: platform staff only for now.


@router.get("/screenings")
async def list_screenings(
    uow: UnitOfWorkDep,
    _: StaffDep,
    page: PageDep,
    community_id: Annotated[uuid.UUID | None, Query()] = None,
    decision: Annotated[ScreeningDecision | None, Query()] = None,
) -> Page[ScreeningPublic]:
    """Screenings, newest first (platform admins and operators)."""
    rows = await service.list_screenings(
        uow=uow, community_id=community_id, decision=decision, page=page
    )
    items = [ScreeningPublic.model_validate(s, from_attributes=True) for s in rows]
    return make_page(items, page.limit, lambda s: [str(s.id)])


@router.get("/screenings/{screening_id}")
async def get_screening(
    screening_id: uuid.UUID, uow: UnitOfWorkDep, _: StaffDep
) -> ScreeningPublic:
    """One screening (platform admins and operators)."""
    screening = await service.get_screening(uow=uow, screening_id=screening_id)
    return ScreeningPublic.model_validate(screening, from_attributes=True)
