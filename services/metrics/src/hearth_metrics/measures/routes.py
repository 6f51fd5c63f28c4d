"""Content, activity and moderation measures over HTTP."""

from __future__ import annotations

import uuid
from datetime import date

from fastapi import APIRouter, Query

from hearth_metrics.measures import service
from hearth_metrics.measures.access import reader_window
from hearth_metrics.measures.models import ActivityMeasures, ContentMeasures, ModerationMeasures
from hearth_metrics.settings import MetricsSettings
from servicekit.deps import RuntimeDep, SessionDep
from servicekit.identity import CurrentPrincipal
from servicekit.runtime import settings_of

router = APIRouter(tags=["metrics"])


@router.get("/communities/{community_id}/measures/content")
async def content_measures(
    community_id: uuid.UUID,
    session: SessionDep,
    runtime: RuntimeDep,
    actor: CurrentPrincipal,
    start: date | None = None,
    end: date | None = None,
    top: int = Query(default=10, ge=0, le=100),
) -> ContentMeasures:
    """Reads, reactions, comments and shares per post and column; top posts; responsiveness."""
    w = await reader_window(
        session,
        actor,
        community_id,
        what="content",
        start=start,
        end=end,
        settings=settings_of(runtime, MetricsSettings),
    )
    return await service.content_measures(
        session, community_id=community_id, since=w.since, until=w.until, top=top
    )


@router.get("/communities/{community_id}/measures/activities")
async def activity_measures(
    community_id: uuid.UUID,
    session: SessionDep,
    runtime: RuntimeDep,
    actor: CurrentPrincipal,
    start: date | None = None,
    end: date | None = None,
) -> ActivityMeasures:
    """Registrations, attendance rate, no-shows, satisfaction and NPS per activity."""
    w = await reader_window(
        session,
        actor,
        community_id,
        what="activities",
        start=start,
        end=end,
        settings=settings_of(runtime, MetricsSettings),
    )
    return await service.activity_measures(
        session, community_id=community_id, since=w.since, until=w.until, floor=w.people
    )


@router.get("/communities/{community_id}/measures/moderation")
async def moderation_measures(
    community_id: uuid.UUID,
    session: SessionDep,
    runtime: RuntimeDep,
    actor: CurrentPrincipal,
    start: date | None = None,
    end: date | None = None,
) -> ModerationMeasures:
    """Reports, time to action, sanctions, appeals and outcomes, sentiment alerts."""
    w = await reader_window(
        session,
        actor,
        community_id,
        what="moderation",
        start=start,
        end=end,
        settings=settings_of(runtime, MetricsSettings),
    )
    return await service.moderation_measures(
        session, community_id=community_id, since=w.since, until=w.until
    )
