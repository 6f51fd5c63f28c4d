"""The health score over HTTP."""

from __future__ import annotations

import uuid
from datetime import date

from fastapi import APIRouter

from hearth_metrics.health import service
from hearth_metrics.health.models import HealthScore
from hearth_metrics.measures.access import reader_window
from hearth_metrics.settings import MetricsSettings
from servicekit.deps import RuntimeDep, SessionDep
from servicekit.identity import CurrentPrincipal
from servicekit.runtime import settings_of

router = APIRouter(tags=["metrics"])


@router.get("/communities/{community_id}/health")
async def community_health(
    community_id: uuid.UUID,
    session: SessionDep,
    runtime: RuntimeDep,
    actor: CurrentPrincipal,
    start: date | None = None,
    end: date | None = None,
) -> HealthScore:
    """The health score over the window (default: the last 28 days) with its parts."""
    w = await reader_window(
        session,
        actor,
        community_id,
        what="health",
        start=start,
        end=end,
        settings=settings_of(runtime, MetricsSettings),
    )
    inputs = await service.health_inputs(
        session, community_id=community_id, since=w.since, until=w.until
    )
    return service.health_of(
        inputs, community_id=community_id, since=w.since, until=w.until, floor=w.people
    )
