"""The report scheduler: every tick, the last completed week, month and quarter of every
community, each generated exactly once across replicas (a claim row per community+period)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from hearth_metrics.communities.service import policies
from hearth_metrics.measures.access import people_floor
from hearth_metrics.privacy import Floor
from hearth_metrics.reports import service
from hearth_metrics.settings import MetricsSettings
from servicekit.deps import UnitOfWork
from servicekit.ids import utcnow
from servicekit.periodic import periodic
from servicekit.runtime import ServiceRuntime, settings_of


async def run_reports_pass(runtime: ServiceRuntime, now: datetime | None = None) -> str | None:
    """Generate every due report not claimed yet (as of `now`); returns how many it made."""
    settings = settings_of(runtime, MetricsSettings)
    async with runtime.db.session() as session:
        known = await policies(session, settings=settings)
    made = 0
    now = now or utcnow()
    for policy in known:
        for period, start in service.due_periods(now, ZoneInfo(policy.time_zone)):
            async with runtime.db.session() as session:
                report_id = await service.claim(
                    session, community_id=policy.community_id, period=period, start=start
                )
                if report_id is None:
                    continue  # another replica (or an earlier pass) has it
                await service.generate(
                    UnitOfWork(session, runtime),
                    community_id=policy.community_id,
                    period=period,
                    start=start,
                    zone_name=policy.time_zone,
                    floor=people_floor(Floor.of(policy)),
                    trigger="scheduled",
                    base_url=settings.reports_base_url,
                    core_threshold=settings.funnel_core_contributions,
                    core_window_days=settings.funnel_core_window_days,
                    report_id=report_id,
                )
                await session.commit()
                made += 1
    return f"{made} reports generated" if made else None


reports_loop = periodic(
    "metrics_reports",
    run_reports_pass,
    interval=lambda rt: settings_of(rt, MetricsSettings).reports_tick_seconds,
)
