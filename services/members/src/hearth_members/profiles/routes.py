"""The caller's own data: profile, export, deletion; key rotation for staff."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, status

from hearth_members.profiles import service
from hearth_members.profiles.models import ProfileLookupRequest, ProfilePublic, ProfileUpdate
from servicekit.deps import UnitOfWorkDep
from servicekit.identity import CurrentPrincipal, Principal, StaffDep, require_roles
from servicekit.problems import Problem

router = APIRouter(tags=["profiles"])
AdminDep = Annotated[Principal, Depends(require_roles("admin"))]


@router.get("/me/profile")
async def get_profile(uow: UnitOfWorkDep, actor: CurrentPrincipal) -> ProfilePublic:
    """The caller's profile (decrypted for them alone)."""
    return await service.get_profile(uow=uow, user_id=actor.subject)


@router.put("/me/profile")
async def update_profile(
    body: ProfileUpdate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> ProfilePublic:
    """Set the caller's name, e-mail or phone (stored encrypted)."""
    return await service.update_profile(uow=uow, user_id=actor.subject, data=body)


@router.get("/me/export")
async def export_my_data(uow: UnitOfWorkDep, actor: CurrentPrincipal) -> dict[str, Any]:
    """Everything members holds about the caller, as JSON."""
    return await service.export_data(uow=uow, user_id=actor.subject)


@router.delete("/me", status_code=status.HTTP_204_NO_CONTENT)
async def delete_my_data(uow: UnitOfWorkDep, actor: CurrentPrincipal) -> None:
    """Delete the caller's personal data (pseudonymised: ids stay for ledgers and audit)."""
    await service.pseudonymise(uow=uow, user_id=actor.subject, actor_id=actor.subject)


@router.post("/pii/rotate")
async def rotate_keys(uow: UnitOfWorkDep, actor: AdminDep) -> dict[str, int]:
    """Re-encrypt profiles under the active key (platform admins); call until 0."""
    return {"rewritten": await service.rotate_keys(uow=uow)}


# POST with a JSON body, not GET with a query: URLs end up in access logs, proxies and
# browser histories, and an e-mail address or phone number must not.
@router.post("/profiles/lookup")
async def lookup(
    body: ProfileLookupRequest, uow: UnitOfWorkDep, actor: StaffDep
) -> dict[str, str | None]:
    """Find a user id by exact e-mail or phone through the blind index (staff)."""
    if body.email:
        found = await service.find_by_email(uow=uow, email=body.email)
    elif body.phone:
        found = await service.find_by_phone(uow=uow, phone=body.phone)
    else:
        raise Problem(422, "lookup-key", "Invalid request", "give email or phone")
    return {"user_id": str(found) if found else None}
