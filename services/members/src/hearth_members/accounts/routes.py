"""Account routes: internal ones for the gateway, admin ones for platform admins."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status

from hearth_members.accounts import service
from hearth_members.accounts.models import (
    AccountCreate,
    AccountPublic,
    AccountUpdate,
    Identity,
    ProvisionRequest,
    VerifyRequest,
)
from hearth_members.settings import MembersSettings
from servicekit.deps import RuntimeDep, UnitOfWorkDep
from servicekit.identity import CurrentPrincipal, Principal, require_roles
from servicekit.runtime import settings_of

router = APIRouter(tags=["accounts"])
AdminDep = Annotated[Principal, Depends(require_roles("admin"))]


def _gateway_subject(runtime: RuntimeDep) -> uuid.UUID:
    return settings_of(runtime, MembersSettings).gateway_service_subject


# A synchronous call between services, on purpose: the gateway must know at sign-in whether the
# password is right; an event could not answer in time. Only the gateway's principal may call.
@router.post("/internal/accounts/verify")
async def verify(
    body: VerifyRequest, uow: UnitOfWorkDep, actor: CurrentPrincipal, runtime: RuntimeDep
) -> Identity:
    """Check a login and password (the gateway's service principal, accounts:verify)."""
    service.require_gateway(actor, "accounts:verify", gateway_subject=_gateway_subject(runtime))
    return await service.verify(uow=uow, data=body)


@router.post("/internal/accounts/provision")
async def provision(
    body: ProvisionRequest, uow: UnitOfWorkDep, actor: CurrentPrincipal, runtime: RuntimeDep
) -> Identity:
    """The Hearth user of an external issuer's subject (the gateway, accounts:provision)."""
    service.require_gateway(actor, "accounts:provision", gateway_subject=_gateway_subject(runtime))
    return await service.provision(uow=uow, data=body)


@router.post("/accounts", status_code=status.HTTP_201_CREATED)
async def create_account(body: AccountCreate, uow: UnitOfWorkDep, actor: AdminDep) -> AccountPublic:
    """Create a local account (platform admins)."""
    account = await service.create_account(uow=uow, data=body, actor=actor)
    return AccountPublic.model_validate(account, from_attributes=True)


@router.get("/accounts/{account_id}")
async def get_account(account_id: uuid.UUID, uow: UnitOfWorkDep, actor: AdminDep) -> AccountPublic:
    """One account (platform admins)."""
    account = await service.get_account(uow=uow, account_id=account_id)
    return AccountPublic.model_validate(account, from_attributes=True)


@router.patch("/accounts/{account_id}")
async def update_account(
    account_id: uuid.UUID, body: AccountUpdate, uow: UnitOfWorkDep, actor: AdminDep
) -> AccountPublic:
    """Disable/enable an account or change its roles (platform admins)."""
    account = await service.update_account(uow=uow, account_id=account_id, data=body, actor=actor)
    return AccountPublic.model_validate(account, from_attributes=True)
