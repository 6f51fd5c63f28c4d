"""Conversions over HTTP: business systems report them; readers see conversion rates."""

from __future__ import annotations

import uuid
from datetime import date

from fastapi import APIRouter, Query, Response

from hearth_metrics.conversions import service
from hearth_metrics.conversions.models import (
    KIND_PATTERN,
    ConversionCreate,
    ConversionPublic,
    ConversionRates,
)
from hearth_metrics.measures.access import reader_window
from hearth_metrics.settings import MetricsSettings
from servicekit.deps import RuntimeDep, SessionDep, UnitOfWorkDep
from servicekit.identity import CurrentPrincipal, Principal
from servicekit.problems import Problem
from servicekit.runtime import settings_of

router = APIRouter(tags=["metrics"])
WRITE_SCOPE = "metrics:conversions:write"


def reporter(principal: Principal) -> str:
    """Who reports: an API key with the write scope, or platform staff; the id's namespace."""
    if principal.kind == "service" and WRITE_SCOPE in principal.scopes:
        return f"key:{principal.subject}"
    if principal.is_staff:
        return f"user:{principal.subject}"
    raise Problem(
        403,
        "insufficient-scope",
        "Forbidden",
        f"reporting conversions needs an API key with the scope {WRITE_SCOPE!r}",
        required_scope=WRITE_SCOPE,
    )


@router.post("/conversions", status_code=201)
async def report_conversion(
    body: ConversionCreate, uow: UnitOfWorkDep, actor: CurrentPrincipal, response: Response
) -> ConversionPublic:
    """Record a conversion (201), or return the one already recorded under this id (200);
    the same id with another payload is a 409."""
    source = reporter(actor)
    try:
        row, new = await service.record_conversion(uow, source=source, body=body)
    except service.ConversionConflict as exc:
        raise service.conflict_problem(exc) from exc
    await uow.commit()
    if not new:
        response.status_code = 200
    return service.public(row)


@router.get("/communities/{community_id}/conversions/rates")
async def conversion_rates(
    community_id: uuid.UUID,
    session: SessionDep,
    runtime: RuntimeDep,
    actor: CurrentPrincipal,
    start: date | None = None,
    end: date | None = None,
    kind: str | None = Query(default=None, pattern=KIND_PATTERN),
) -> ConversionRates:
    """Conversion rates of the community, per activity and per channel, over local days."""
    settings = settings_of(runtime, MetricsSettings)
    w = await reader_window(
        session, actor, community_id, what="conversions", settings=settings, start=start, end=end
    )
    return await service.conversion_rates(
        session,
        community_id=community_id,
        since=w.since,
        until=w.until,
        kind=kind,
        floor=w.people,
    )
