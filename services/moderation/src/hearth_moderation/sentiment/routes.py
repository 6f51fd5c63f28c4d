"""Sentiment's routes, for the community's owner, admins and moderators (and platform staff)."""

from __future__ import annotations

import uuid
from typing import Annotated, cast

from fastapi import APIRouter, Query, Request

from hearth_moderation import service as moderation
from hearth_moderation.sentiment import service
from hearth_moderation.sentiment.models import (
    AlertAcknowledgeRequest,
    AlertResolveRequest,
    AlertStatus,
    SentimentAlertPublic,
    SentimentOverview,
)
from hearth_moderation.settings import ModerationSettings
from servicekit.deps import UnitOfWorkDep
from servicekit.identity import CurrentPrincipal
from servicekit.pagination import Page, PageDep, after_id, make_page

router = APIRouter(tags=["sentiment"])


@router.get("/communities/{community_id}/sentiment")
async def get_sentiment(
    community_id: uuid.UUID,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
    request: Request,
    window: Annotated[int, Query(ge=1, le=720)] = 24,
) -> SentimentOverview:
    """The rolling negative share and volume over the last `window` buckets, the baseline and
    the unresolved alert, if any."""
    await moderation.require_rule_manager(uow=uow, community_id=community_id, actor=actor)
    settings = cast(ModerationSettings, request.app.state.settings)
    return await service.overview(
        uow.session,
        community_id=community_id,
        bucket_seconds=settings.sentiment_bucket_seconds,
        window=window,
    )


@router.get("/communities/{community_id}/sentiment/alerts")
async def list_sentiment_alerts(
    community_id: uuid.UUID,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
    page: PageDep,
    status: Annotated[AlertStatus | None, Query()] = None,
) -> Page[SentimentAlertPublic]:
    """The community's alerts, newest first."""
    await moderation.require_rule_manager(uow=uow, community_id=community_id, actor=actor)
    rows = await service.list_alerts(
        uow.session,
        community_id=community_id,
        status=status,
        limit=page.limit,
        after=after_id(page) if page.after is not None else None,
    )
    return make_page([service.public(a) for a in rows], page.limit, lambda a: [str(a.id)])


@router.post("/communities/{community_id}/sentiment/alerts/{alert_id}/acknowledge")
async def acknowledge_alert(
    community_id: uuid.UUID,
    alert_id: uuid.UUID,
    body: AlertAcknowledgeRequest,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
) -> SentimentAlertPublic:
    """Take an open alert (its owner: `owner_id`, or you)."""
    await moderation.require_rule_manager(uow=uow, community_id=community_id, actor=actor)
    alert = await service.acknowledge(
        uow,
        community_id=community_id,
        alert_id=alert_id,
        actor=actor,
        owner_id=body.owner_id,
        note=body.note,
    )
    return service.public(alert)


@router.post("/communities/{community_id}/sentiment/alerts/{alert_id}/resolve")
async def resolve_alert(
    community_id: uuid.UUID,
    alert_id: uuid.UUID,
    body: AlertResolveRequest,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
) -> SentimentAlertPublic:
    """Resolve an acknowledged alert; a later spike opens a new one."""
    await moderation.require_rule_manager(uow=uow, community_id=community_id, actor=actor)
    alert = await service.resolve(
        uow, community_id=community_id, alert_id=alert_id, actor=actor, note=body.note
    )
    return service.public(alert)
