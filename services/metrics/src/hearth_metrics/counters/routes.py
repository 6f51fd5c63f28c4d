"""Metrics' HTTP routes (served at /, public through the gateway at /api/metrics)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from hearth_metrics.counters import service
from hearth_metrics.counters.models import CommunityCountsPublic, MetricDescription
from servicekit.deps import SessionDep
from servicekit.identity import CurrentPrincipal, StaffDep
from servicekit.pagination import Page

router = APIRouter(tags=["metrics"])
# Community owners/admins get their own community's numbers once community roles flow here.


@router.get("/communities/{community_id}/counts")
async def community_counts(
    community_id: uuid.UUID, session: SessionDep, _: StaffDep
) -> CommunityCountsPublic:
    """A community's joins, posts and registrations so far (platform admins and operators)."""
    return await service.get_counts(session=session, community_id=community_id)


@router.get("/catalogue")
async def metrics_catalogue(_: CurrentPrincipal) -> Page[MetricDescription]:
    """Every metric a community goal can be set on (any signed-in caller); one complete page."""
    return Page(items=service.catalogue())
