"""Events' HTTP routes (served at /, public through the gateway at /api/events)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from hearth_events import service
from hearth_events.models import (
    ActivityCreate,
    ActivityPublic,
    ActivityUpdate,
    CapacityChange,
    CommunityEventSettingsPublic,
    CommunityEventSettingsUpdate,
    RegistrationCreate,
    RegistrationPublic,
    RejectionRequest,
    TransitionRequest,
)
from servicekit.deps import UnitOfWorkDep
from servicekit.identity import CurrentPrincipal
from servicekit.pagination import Page, PageDep, make_page

router = APIRouter(tags=["activities"])


@router.post("/activities", status_code=status.HTTP_201_CREATED)
async def publish_activity(
    body: ActivityCreate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> ActivityPublic:
    """Publish an activity in a community (platform admins and operators for now)."""
    activity = await service.publish_activity(uow=uow, data=body, actor=actor)
    return ActivityPublic.model_validate(activity, from_attributes=True)


@router.get("/activities")
async def list_activities(
    community_id: Annotated[uuid.UUID, Query()],
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
    page: PageDep,
) -> Page[ActivityPublic]:
    """A community's activities, soonest first (staff and the community's members)."""
    rows = await service.list_activities(uow=uow, community_id=community_id, actor=actor, page=page)
    items = [ActivityPublic.model_validate(a, from_attributes=True) for a in rows]
    return make_page(items, page.limit, lambda a: [a.starts_at.isoformat(), str(a.id)])


@router.get("/activities/{activity_id}")
async def get_activity(
    activity_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> ActivityPublic:
    """One activity (staff and the community's members)."""
    activity = await service.get_activity(uow=uow, activity_id=activity_id, actor=actor)
    return ActivityPublic.model_validate(activity, from_attributes=True)


@router.post("/activities/{activity_id}/registrations", status_code=status.HTTP_201_CREATED)
async def register(
    activity_id: uuid.UUID,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
    response: Response,
    body: RegistrationCreate | None = None,
) -> RegistrationPublic:
    """Register the caller (answers to the questions in the body); again: 200, same one."""
    registration, created = await service.register(
        uow=uow, activity_id=activity_id, actor=actor, answers=body.answers if body else None
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return RegistrationPublic.model_validate(registration, from_attributes=True)


@router.get("/activities/{activity_id}/registrations")
async def list_registrations(
    activity_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal, page: PageDep
) -> Page[RegistrationPublic]:
    """An activity's registrations (platform admins and operators)."""
    rows = await service.list_registrations(
        uow=uow, activity_id=activity_id, actor=actor, page=page
    )
    items = [RegistrationPublic.model_validate(r, from_attributes=True) for r in rows]
    return make_page(items, page.limit, lambda r: [r.position, str(r.id)])


@router.delete("/activities/{activity_id}/registrations/me")
async def cancel_registration(
    activity_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> RegistrationPublic:
    """Give up the caller's seat or waitlist place; the waitlist's head takes a freed seat."""
    registration = await service.cancel_registration(uow=uow, activity_id=activity_id, actor=actor)
    return RegistrationPublic.model_validate(registration, from_attributes=True)


@router.post("/activities/{activity_id}/transitions")
async def transition(
    activity_id: uuid.UUID, body: TransitionRequest, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> ActivityPublic:
    """Move the activity along its lifecycle (organisers); 409 names the allowed moves."""
    activity = await service.transition(uow=uow, activity_id=activity_id, to=body.to, actor=actor)
    return ActivityPublic.model_validate(activity, from_attributes=True)


@router.put("/activities/{activity_id}/capacity")
async def change_capacity(
    activity_id: uuid.UUID, body: CapacityChange, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> ActivityPublic:
    """Set the capacity (organisers); raising it promotes from the waitlist in order."""
    activity = await service.change_capacity(
        uow=uow, activity_id=activity_id, capacity=body.capacity, actor=actor
    )
    return ActivityPublic.model_validate(activity, from_attributes=True)


@router.patch("/activities/{activity_id}")
async def update_activity(
    activity_id: uuid.UUID, body: ActivityUpdate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> ActivityPublic:
    """Change an activity's details (organisers and hosts) until it ends."""
    activity = await service.update_activity(
        uow=uow, activity_id=activity_id, data=body, actor=actor
    )
    return ActivityPublic.model_validate(activity, from_attributes=True)


@router.post("/activities/{activity_id}/registrations/{registration_id}/approve")
async def approve_registration(
    activity_id: uuid.UUID,
    registration_id: uuid.UUID,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
) -> RegistrationPublic:
    """Approve a pending registration: a seat if one is free, else the waitlist's end."""
    registration = await service.decide(
        uow=uow,
        activity_id=activity_id,
        registration_id=registration_id,
        approve=True,
        actor=actor,
    )
    return RegistrationPublic.model_validate(registration, from_attributes=True)


@router.post("/activities/{activity_id}/registrations/{registration_id}/reject")
async def reject_registration(
    activity_id: uuid.UUID,
    registration_id: uuid.UUID,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
    body: RejectionRequest | None = None,
) -> RegistrationPublic:
    """Turn a registration down (pending, or a seat: the waitlist's head then takes it)."""
    registration = await service.decide(
        uow=uow,
        activity_id=activity_id,
        registration_id=registration_id,
        approve=False,
        actor=actor,
        reason=body.reason if body else None,
    )
    return RegistrationPublic.model_validate(registration, from_attributes=True)


@router.get("/communities/{community_id}/activity-settings")
async def get_community_settings(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> CommunityEventSettingsPublic:
    """A community's rules for its activities (its members and staff)."""
    row = await service.get_community_settings(uow=uow, community_id=community_id, actor=actor)
    if row is None:
        return CommunityEventSettingsPublic(community_id=community_id, max_waitlists=None)
    return CommunityEventSettingsPublic.model_validate(row, from_attributes=True)


@router.put("/communities/{community_id}/activity-settings")
async def set_community_settings(
    community_id: uuid.UUID,
    body: CommunityEventSettingsUpdate,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
) -> CommunityEventSettingsPublic:
    """Set the community's rules (owners, admins, staff): e.g. a per-member waitlist limit."""
    row = await service.set_community_settings(
        uow=uow, community_id=community_id, max_waitlists=body.max_waitlists, actor=actor
    )
    return CommunityEventSettingsPublic.model_validate(row, from_attributes=True)
