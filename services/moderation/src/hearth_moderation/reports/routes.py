"""Report routes: file a report, one's own reports, the community's report policy."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from hearth_moderation.reports import service
from hearth_moderation.reports.models import (
    ReportCreate,
    ReportPolicyPublic,
    ReportPolicyUpdate,
    ReportPublic,
)
from servicekit.deps import UnitOfWorkDep
from servicekit.identity import CurrentPrincipal
from servicekit.pagination import Page, PageDep, make_page

router = APIRouter(tags=["reports"])


@router.post("/communities/{community_id}/reports", status_code=201)
async def file_report(
    community_id: uuid.UUID, body: ReportCreate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> ReportPublic:
    """Report a post, comment or member of the community (members of it)."""
    report = await service.file_report(uow=uow, community_id=community_id, data=body, actor=actor)
    return ReportPublic.model_validate(report, from_attributes=True)


@router.get("/me/reports")
async def my_reports(
    uow: UnitOfWorkDep, actor: CurrentPrincipal, page: PageDep
) -> Page[ReportPublic]:
    """The caller's reports, newest first, with their outcome."""
    rows = await service.list_my_reports(uow=uow, actor=actor, page=page)
    items = [ReportPublic.model_validate(r, from_attributes=True) for r in rows]
    return make_page(items, page.limit, lambda r: [str(r.id)])


@router.get("/communities/{community_id}/reports/policy")
async def get_policy(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> ReportPolicyPublic:
    """The hide threshold and reporter weights (the team and staff)."""
    policy = await service.get_policy(uow=uow, community_id=community_id, actor=actor)
    return ReportPolicyPublic.model_validate(policy, from_attributes=True)


@router.patch("/communities/{community_id}/reports/policy")
async def update_policy(
    community_id: uuid.UUID,
    body: ReportPolicyUpdate,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
) -> ReportPolicyPublic:
    """Change the hide threshold or the reporter weights."""
    policy = await service.update_policy(uow=uow, community_id=community_id, data=body, actor=actor)
    return ReportPolicyPublic.model_validate(policy, from_attributes=True)
