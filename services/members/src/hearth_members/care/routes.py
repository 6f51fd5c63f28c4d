"""Care routes: settings, journeys and their summary (community managers)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from hearth_members.care import service
from hearth_members.care.models import (
    CareJourneyPublic,
    CareSettingsPublic,
    CareSettingsUpdate,
    CareSummary,
    JourneyStatus,
)
from servicekit.deps import UnitOfWorkDep
from servicekit.identity import CurrentPrincipal
from servicekit.pagination import Page, PageDep, make_page

router = APIRouter(tags=["care"])
BASE = "/communities/{community_id}"


@router.get(BASE + "/care-settings")
async def get_care_settings(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> CareSettingsPublic:
    """A community's care settings (owners, admins, staff)."""
    found = await service.get_settings(uow=uow, community_id=community_id, actor=actor)
    return CareSettingsPublic.model_validate(found, from_attributes=True)


@router.put(BASE + "/care-settings")
async def put_care_settings(
    community_id: uuid.UUID, body: CareSettingsUpdate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> CareSettingsPublic:
    """Set whether journeys run, the follow-up delay and the win-back window."""
    found = await service.set_settings(uow=uow, community_id=community_id, data=body, actor=actor)
    return CareSettingsPublic.model_validate(found, from_attributes=True)


@router.get(BASE + "/care-journeys")
async def list_care_journeys(
    community_id: uuid.UUID,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
    page: PageDep,
    status: JourneyStatus | None = None,
) -> Page[CareJourneyPublic]:
    """A community's care journeys, newest first, optionally by status."""
    rows = await service.list_journeys(
        uow=uow, community_id=community_id, actor=actor, page=page, status=status
    )
    items = [CareJourneyPublic.model_validate(j, from_attributes=True) for j in rows]
    return make_page(items, page.limit, lambda j: [str(j.id)])


@router.get(BASE + "/care-journeys/summary")
async def care_summary(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> CareSummary:
    """Journeys started, open, won back, lapsed, and the win-back rate."""
    return await service.summary(uow=uow, community_id=community_id, actor=actor)
