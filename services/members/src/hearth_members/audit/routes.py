"""Audit routes: a community's log (its moderators) and the platform's (staff)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from hearth_members.audit.models import AuditPublic
from hearth_members.audit.service import list_audit
from hearth_members.communities.service import acting_role
from hearth_members.permissions import Action
from servicekit.deps import UnitOfWorkDep
from servicekit.identity import CurrentPrincipal, StaffDep
from servicekit.pagination import Page, PageDep, make_page

router = APIRouter(tags=["communities"])
C = "/communities/{community_id}"


@router.get(C + "/audit")
async def community_audit(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal, page: PageDep
) -> Page[AuditPublic]:
    """A community's audit trail (owner, admin)."""
    await acting_role(uow=uow, community_id=community_id, actor=actor, action=Action.read_audit)
    rows = await list_audit(uow=uow, page=page, community_id=community_id)
    items = [AuditPublic.model_validate(r, from_attributes=True) for r in rows]
    return make_page(items, page.limit, lambda r: [str(r.id)])


@router.get("/audit")
async def platform_audit(
    uow: UnitOfWorkDep, actor: StaffDep, page: PageDep, actor_id: uuid.UUID | None = None
) -> Page[AuditPublic]:
    """The whole audit trail (staff)."""
    rows = await list_audit(uow=uow, page=page, actor_id=actor_id)
    items = [AuditPublic.model_validate(r, from_attributes=True) for r in rows]
    return make_page(items, page.limit, lambda r: [str(r.id)])
