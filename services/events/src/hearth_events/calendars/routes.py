"""Calendar feed routes (text/calendar) and the personal feed's tokens."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response, status

from hearth_events.calendars import service
from hearth_events.calendars.models import (
    CalendarTokenCreate,
    CalendarTokenIssued,
    CalendarTokenPublic,
)
from servicekit.deps import UnitOfWorkDep
from servicekit.identity import CurrentPrincipal

router = APIRouter(tags=["calendars"])
ICS: dict[int | str, dict[str, Any]] = {200: {"content": {"text/calendar": {}}}}
MEDIA = "text/calendar; charset=utf-8"


@router.get("/activities/{activity_id}/calendar.ics", response_class=Response, responses=ICS)
async def activity_feed(
    activity_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> Response:
    """One activity as an iCalendar file."""
    body = await service.activity_feed(uow=uow, activity_id=activity_id, actor=actor)
    return Response(body, media_type=MEDIA)


@router.get("/communities/{community_id}/activities.ics", response_class=Response, responses=ICS)
async def community_feed(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> Response:
    """The community's activities as an iCalendar feed (its members)."""
    body = await service.community_feed(uow=uow, community_id=community_id, actor=actor)
    return Response(body, media_type=MEDIA)


@router.post("/calendar/tokens", status_code=status.HTTP_201_CREATED)
async def issue_token(
    uow: UnitOfWorkDep, actor: CurrentPrincipal, body: CalendarTokenCreate | None = None
) -> CalendarTokenIssued:
    """A personal feed URL of the caller's registrations (the secret is shown only now)."""
    row, secret = await service.issue_token(
        uow=uow, actor=actor, label=body.label if body else None
    )
    return CalendarTokenIssued.model_validate(
        row,
        from_attributes=True,
        update={"token": secret, "path": service.FEED_PATH.format(token=secret)},
    )


@router.get("/calendar/tokens")
async def list_tokens(uow: UnitOfWorkDep, actor: CurrentPrincipal) -> list[CalendarTokenPublic]:
    """The caller's feed tokens (without their secrets)."""
    rows = await service.list_tokens(uow=uow, actor=actor)
    return [CalendarTokenPublic.model_validate(r, from_attributes=True) for r in rows]


@router.delete("/calendar/tokens/{token_id}")
async def revoke_token(
    token_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> CalendarTokenPublic:
    """Revoke a feed token: its URL answers 404 from now on."""
    row = await service.revoke_token(uow=uow, token_id=token_id, actor=actor)
    return CalendarTokenPublic.model_validate(row, from_attributes=True)


@router.get("/calendar/feeds/{token}.ics", response_class=Response, responses=ICS)
async def personal_feed(token: str, uow: UnitOfWorkDep, actor: CurrentPrincipal) -> Response:
    """The token owner's registrations as an iCalendar feed (the token is the credential)."""
    del actor  # the service's identity floor still applies; the token says whose feed it is
    body = await service.personal_feed(uow=uow, token=token[:200])
    return Response(body, media_type=MEDIA)
