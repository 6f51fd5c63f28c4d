"""The funnel over HTTP."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi import APIRouter

from hearth_metrics.funnels import service
from hearth_metrics.funnels.models import Funnel
from hearth_metrics.measures.access import reader_window
from hearth_metrics.settings import MetricsSettings
from servicekit.deps import RuntimeDep, SessionDep
from servicekit.identity import CurrentPrincipal
from servicekit.runtime import settings_of

router = APIRouter(tags=["metrics"])


@router.get("/communities/{community_id}/funnel")
async def community_funnel(
    community_id: uuid.UUID,
    session: SessionDep,
    runtime: RuntimeDep,
    actor: CurrentPrincipal,
    start: date | None = None,
    end: date | None = None,
) -> Funnel:
    """Visitor -> member -> contributor -> core member for people first seen in [start, end]."""
    settings = settings_of(runtime, MetricsSettings)
    w = await reader_window(
        session, actor, community_id, what="funnel", settings=settings, start=start, end=end
    )
    zone = ZoneInfo(w.policy.time_zone)

    def week(at: datetime) -> object:
        day = at.astimezone(zone).date()
        return day - timedelta(days=day.weekday())

    return await service.funnel(
        session,
        community_id=community_id,
        start_day=w.start,
        end_day=w.end + timedelta(days=1),
        since=w.since,
        until=w.until,
        threshold=settings.funnel_core_contributions,
        window_days=settings.funnel_core_window_days,
        floor=w.people,
        cell_of=week if w.floor.applies else None,
    )
