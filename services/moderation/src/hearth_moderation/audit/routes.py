"""The audit log's routes: verification and records for platform staff, a community's records
for its owner, admins and moderators."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from hearth_moderation import service as moderation
from hearth_moderation.audit import service
from hearth_moderation.audit.models import AuditRecordPublic, AuditVerification
from servicekit.deps import UnitOfWorkDep
from servicekit.identity import CurrentPrincipal, StaffDep
from servicekit.pagination import Page, PageDep, make_page

router = APIRouter(tags=["audit"])


@router.get("/audit/verify")
async def verify_audit(uow: UnitOfWorkDep, _: StaffDep) -> AuditVerification:
    """Walk the whole chain; `broken` names the first record that does not hold (staff)."""
    return await service.verify_chain(uow.session)


@router.get("/audit/records")
async def list_audit_records(
    uow: UnitOfWorkDep,
    _: StaffDep,
    page: PageDep,
    community_id: Annotated[uuid.UUID | None, Query()] = None,
    item_type: Annotated[str | None, Query(max_length=40)] = None,
    item_id: Annotated[uuid.UUID | None, Query()] = None,
) -> Page[AuditRecordPublic]:
    """Audit records, newest first (platform staff)."""
    rows = await service.list_records(
        uow.session, page=page, community_id=community_id, item_type=item_type, item_id=item_id
    )
    return make_page([service.public(r) for r in rows], page.limit, lambda r: [r.seq])


@router.get("/communities/{community_id}/audit")
async def list_community_audit(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal, page: PageDep
) -> Page[AuditRecordPublic]:
    """A community's audit records, newest first (its owner, admins, moderators; staff)."""
    await moderation.require_rule_manager(uow=uow, community_id=community_id, actor=actor)
    rows = await service.list_records(uow.session, page=page, community_id=community_id)
    return make_page([service.public(r) for r in rows], page.limit, lambda r: [r.seq])
