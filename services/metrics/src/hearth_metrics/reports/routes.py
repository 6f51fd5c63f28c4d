"""Reports over HTTP: on demand, listed, described and downloaded; and the analysis view."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Response
from sqlalchemy import select

from hearth_metrics.analysis import series as analysis
from hearth_metrics.communities.service import policy_of
from hearth_metrics.measures.access import people_floor
from hearth_metrics.permissions import require_reader
from hearth_metrics.privacy import Floor
from hearth_metrics.reports import service
from hearth_metrics.reports.models import FORMATS, PeriodName, Report, ReportCreate, ReportPublic
from hearth_metrics.settings import MetricsSettings
from servicekit.deps import RuntimeDep, SessionDep, UnitOfWorkDep
from servicekit.identity import CurrentPrincipal
from servicekit.pagination import Page
from servicekit.problems import not_found
from servicekit.runtime import settings_of

router = APIRouter(tags=["metrics"])


@router.post("/communities/{community_id}/reports", status_code=201)
async def create_report(
    community_id: uuid.UUID,
    body: ReportCreate,
    uow: UnitOfWorkDep,
    runtime: RuntimeDep,
    actor: CurrentPrincipal,
) -> ReportPublic:
    """Generate a report now (default: the current period so far), store and announce it."""
    session = uow.session
    settings = settings_of(runtime, MetricsSettings)
    await require_reader(session, actor, community_id, what="reports")
    policy = await policy_of(session, community_id=community_id, settings=settings)
    today = datetime.now(ZoneInfo(policy.time_zone)).date()
    start = analysis.period_start(body.start or today, body.period)
    report = await service.generate(
        uow,
        community_id=community_id,
        period=body.period,
        start=start,
        zone_name=policy.time_zone,
        floor=people_floor(Floor.of(policy)),
        trigger="on_demand",
        base_url=settings.reports_base_url,
        core_threshold=settings.funnel_core_contributions,
        core_window_days=settings.funnel_core_window_days,
    )
    await uow.commit()
    return service.public(settings.reports_base_url, report)


@router.get("/communities/{community_id}/reports")
async def list_reports(
    community_id: uuid.UUID, session: SessionDep, runtime: RuntimeDep, actor: CurrentPrincipal
) -> Page[ReportPublic]:
    """The community's newest 100 reports, newest period first (one page)."""
    await require_reader(session, actor, community_id, what="reports")
    r: Any = Report
    rows = (
        await session.execute(
            select(r)
            .where(r.community_id == community_id)
            .order_by(r.period_start.desc(), r.generated_at.desc())
            .limit(100)
        )
    ).scalars()
    base = settings_of(runtime, MetricsSettings).reports_base_url
    return Page(items=[service.public(base, row) for row in rows])


async def _report(session: Any, community_id: uuid.UUID, report_id: uuid.UUID) -> Report:
    row = await session.get(Report, report_id)
    if row is None or row.community_id != community_id:
        raise not_found("report", report_id)
    return row


@router.get("/communities/{community_id}/reports/{report_id}")
async def get_report(
    community_id: uuid.UUID,
    report_id: uuid.UUID,
    session: SessionDep,
    runtime: RuntimeDep,
    actor: CurrentPrincipal,
) -> ReportPublic:
    """One report's description and download links."""
    await require_reader(session, actor, community_id, what="reports")
    row = await _report(session, community_id, report_id)
    return service.public(settings_of(runtime, MetricsSettings).reports_base_url, row)


@router.get("/communities/{community_id}/reports/{report_id}/{fmt}")
async def download_report(
    community_id: uuid.UUID,
    report_id: uuid.UUID,
    fmt: Literal["json", "csv", "svg", "png"],
    session: SessionDep,
    actor: CurrentPrincipal,
) -> Response:
    """The report as JSON, CSV, or its chart as SVG or PNG."""
    await require_reader(session, actor, community_id, what="reports")
    row = await _report(session, community_id, report_id)
    contents: dict[str, str | bytes] = {
        "json": row.body,
        "csv": row.csv,
        "svg": row.svg,
        "png": row.png,
    }
    content = contents[fmt]
    name = f"report-{row.period}-{row.period_start.isoformat()}.{fmt}"
    return Response(
        content=content,
        media_type=FORMATS[fmt],
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


@router.get("/communities/{community_id}/analysis")
async def community_analysis(
    community_id: uuid.UUID,
    session: SessionDep,
    runtime: RuntimeDep,
    actor: CurrentPrincipal,
    period: PeriodName = "week",
    start: date | None = None,
) -> dict[str, Any]:
    """Period over period, trend lines and the activities/contributions correlation (live)."""
    settings = settings_of(runtime, MetricsSettings)
    await require_reader(session, actor, community_id, what="reports")
    policy = await policy_of(session, community_id=community_id, settings=settings)
    today = datetime.now(ZoneInfo(policy.time_zone)).date()
    doc = await service.build(
        session,
        community_id=community_id,
        period=period,
        start=analysis.period_start(start or today, period),
        zone_name=policy.time_zone,
        floor=people_floor(Floor.of(policy)),
        core_threshold=settings.funnel_core_contributions,
        core_window_days=settings.funnel_core_window_days,
    )
    keys = (
        "period",
        "period_start",
        "period_end",
        "previous_start",
        "time_zone",
        "totals",
        "series",
        "trend",
        "correlation",
    )
    return {k: doc[k] for k in keys}
