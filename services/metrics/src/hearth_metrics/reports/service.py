"""Building, storing and publishing community reports (scheduled once, or on demand)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_metrics.analysis import series as analysis
from hearth_metrics.conversions.models import Conversion
from hearth_metrics.conversions.service import conversion_rates
from hearth_metrics.funnels.models import Contribution, MemberMilestone
from hearth_metrics.funnels.service import funnel
from hearth_metrics.health.service import health_inputs, health_of
from hearth_metrics.measures.models import Activity
from hearth_metrics.measures.service import (
    activity_measures,
    content_measures,
    moderation_measures,
)
from hearth_metrics.reports import render
from hearth_metrics.reports.events import ReportPublished
from hearth_metrics.reports.models import FORMATS, Report, ReportClaim, ReportPublic
from servicekit.db import upsert_insert
from servicekit.deps import UnitOfWork
from servicekit.ids import utcnow, uuid7

Floor = Callable[[int], tuple[int | None, str | None]]
PEOPLE_SERIES = ("new_members",)


def bounds(start: date, end: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants of local midnight at `start` and `end`."""
    return (
        datetime.combine(start, time(), zone).astimezone(UTC),
        datetime.combine(end, time(), zone).astimezone(UTC),
    )


async def _daily(
    session: AsyncSession, column: Any, *where: Any, zone: ZoneInfo, value: Any = None
) -> dict[date, float]:
    """Sum (or count) per local day of the rows' timestamps."""
    cols = [column] if value is None else [column, value]
    out: dict[date, float] = {}
    for row in (await session.execute(select(*cols).where(*where))).all():
        day = row[0].astimezone(zone).date()
        out[day] = out.get(day, 0.0) + (1.0 if value is None else float(row[1] or 0.0))
    return out


async def _daily_people(
    session: AsyncSession, column: Any, person: Any, *where: Any, zone: ZoneInfo
) -> dict[date, set[Any]]:
    """The distinct people (non-null `person`) per local day of the rows' timestamps."""
    out: dict[date, set[Any]] = {}
    for at, who in (await session.execute(select(column, person).where(*where))).all():
        day = out.setdefault(at.astimezone(zone).date(), set())
        if who is not None:
            day.add(who)
    return out


async def build(
    session: AsyncSession,
    *,
    community_id: uuid.UUID,
    period: analysis.Period,
    start: date,
    zone_name: str,
    floor: Floor,
    core_threshold: int,
    core_window_days: int,
) -> dict[str, Any]:
    """The report document: totals against the period before, daily series, trends, the
    correlation of activities held with contributions the week after, funnel, conversions,
    content, activities, moderation and the health score."""
    zone = ZoneInfo(zone_name)
    end = analysis.next_period(start, period)
    prev = analysis.previous_period(start, period)
    since, until = bounds(start, end, zone)
    p_since, _ = bounds(prev, start, zone)
    # The correlation looks one week past each activity day, also past the period's end.
    horizon = until + timedelta(days=7)
    m: Any = MemberMilestone
    c: Any = Contribution
    v: Any = Conversion
    a: Any = Activity
    mine = m.community_id == community_id
    joins = await _daily(
        session, m.joined_at, mine, m.joined_at >= p_since, m.joined_at < until, zone=zone
    )
    posts = await _daily(
        session, c.at, c.community_id == community_id, c.at >= p_since, c.at < horizon, zone=zone
    )
    conv = await _daily(
        session,
        v.occurred_at,
        v.community_id == community_id,
        v.occurred_at >= p_since,
        v.occurred_at < until,
        zone=zone,
    )
    conv_value = await _daily(
        session,
        v.occurred_at,
        v.community_id == community_id,
        v.occurred_at >= p_since,
        v.occurred_at < until,
        zone=zone,
        value=v.value,
    )
    # The people behind the conversions, per day: a count of conversions rests on them.
    converters = await _daily_people(
        session,
        v.occurred_at,
        v.user_id,
        v.community_id == community_id,
        v.occurred_at >= p_since,
        v.occurred_at < until,
        zone=zone,
    )
    held = await _daily(
        session,
        a.starts_at,
        a.community_id == community_id,
        a.starts_at >= p_since,
        a.starts_at < until,
        zone=zone,
    )

    async def active(lo: datetime, hi: datetime) -> int:
        window = (c.community_id == community_id) & (c.at >= lo) & (c.at < hi)
        q = select(func.count(func.distinct(c.user_id))).where(window)
        return int((await session.execute(q)).scalar_one())

    def total(s: dict[date, float], lo: date, hi: date) -> float:
        return sum(x for d, x in s.items() if lo <= d < hi)

    days = [start + timedelta(days=i) for i in range((end - start).days)]
    series: list[dict[str, Any]] = [
        {
            "day": d.isoformat(),
            "new_members": joins.get(d, 0.0),
            "contributions": posts.get(d, 0.0),
            "conversions": conv.get(d, 0.0),
        }
        for d in days
    ]
    # People counts below the floor: the whole series goes (one hidden day would be given
    # back by the total minus the other days).
    for name in PEOPLE_SERIES:
        values = [int(row[name]) for row in series]
        if any(x and floor(x)[1] for x in values) or floor(sum(values))[1]:
            for row in series:
                row[name] = None

    # Conversions count rows, but each names a person: the series goes as a whole when a day
    # or the period rests on fewer than k converting people (as a people series does).
    def converting(lo: date, hi: date) -> int:
        return len(set().union(*(u for d, u in converters.items() if lo <= d < hi)))

    period_days = [u for d, u in converters.items() if start <= d < end]
    if any(floor(len(u))[1] for u in period_days if u) or (
        period_days and floor(converting(start, end))[1]
    ):
        for row in series:
            row["conversions"] = None

    totals: dict[str, Any] = {}

    def put(
        name: str,
        cur: float | None,
        before: float | None,
        people: bool = False,
        rests_on: tuple[int, int] | None = None,
    ) -> None:
        if people and cur is not None and before is not None:
            if floor(int(cur))[1] or floor(int(before))[1]:
                cur = before = None
        if rests_on is not None and any(n and floor(n)[1] for n in rests_on):
            cur = before = None
        if cur is None or before is None:
            totals[name] = {
                "current": cur,
                "previous": before,
                "change": None,
                "change_ratio": None,
                "suppressed": "fewer people than the floor",
            }
            return
        totals[name] = {
            k: (round(x, 6) if isinstance(x, float) else x)
            for k, x in asdict(analysis.compare(cur, before)).items()
        }

    put("new_members", total(joins, start, end), total(joins, prev, start), people=True)
    put(
        "active_contributors", await active(since, until), await active(p_since, since), people=True
    )
    put("contributions", total(posts, start, end), total(posts, prev, start))
    on = (converting(start, end), converting(prev, start))
    put("conversions", total(conv, start, end), total(conv, prev, start), rests_on=on)
    put(
        "conversion_value",
        total(conv_value, start, end),
        total(conv_value, prev, start),
        rests_on=on,
    )
    put("activities_held", total(held, start, end), total(held, prev, start))

    trend = {}
    for name in ("contributions", "new_members", "conversions"):
        ys = [row[name] for row in series]
        if any(y is None for y in ys):
            trend[name] = {"slope": None, "intercept": None, "n": len(ys)}
        else:
            trend[name] = asdict(analysis.trend([float(y) for y in ys]))
    # Activities held on a day vs contributions in the 7 days after it, over this period and
    # the one before (more points than one period alone).
    every = [prev + timedelta(days=i) for i in range((end - prev).days)]
    xs = [held.get(d, 0.0) for d in every]
    ys = [sum(posts.get(d + timedelta(days=k), 0.0) for k in range(1, 8)) for d in every]
    corr = analysis.pearson(xs, ys)

    rates = await conversion_rates(
        session, community_id=community_id, since=since, until=until, kind=None, floor=floor
    )
    fun = await funnel(
        session,
        community_id=community_id,
        start_day=start,
        end_day=end,
        since=since,
        until=until,
        threshold=core_threshold,
        window_days=core_window_days,
        floor=floor,
    )
    content = await content_measures(
        session, community_id=community_id, since=since, until=until, top=5
    )
    acts = await activity_measures(
        session, community_id=community_id, since=since, until=until, floor=floor
    )
    mod = await moderation_measures(session, community_id=community_id, since=since, until=until)
    inputs = await health_inputs(session, community_id=community_id, since=since, until=until)
    health = health_of(inputs, community_id=community_id, since=since, until=until, floor=floor)
    return {
        "community_id": str(community_id),
        "period": period,
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
        "previous_start": prev.isoformat(),
        "time_zone": zone_name,
        "totals": totals,
        "series": series,
        "trend": trend,
        "correlation": {
            "name": "activities_held_vs_contributions_next_7_days",
            "r": None if corr.r is None else round(corr.r, 6),
            "n": corr.n,
        },
        "funnel": fun.model_dump(mode="json"),
        "conversions": rates.model_dump(mode="json"),
        "content": content.model_dump(mode="json"),
        "activities": acts.model_dump(mode="json"),
        "moderation": mod.model_dump(mode="json"),
        "health": health.model_dump(mode="json"),
    }


def links(base: str, report: Report) -> dict[str, str]:
    """Download links of a report, one per format."""
    url = f"{base.rstrip('/')}/communities/{report.community_id}/reports/{report.id}"
    return {fmt: f"{url}/{fmt}" for fmt in FORMATS}


def public(base: str, report: Report) -> ReportPublic:
    """The client's view of a stored report."""
    return ReportPublic(
        id=report.id,
        community_id=report.community_id,
        period=report.period,
        period_start=report.period_start,
        period_end=report.period_end,
        trigger=report.trigger,
        time_zone=report.time_zone,
        generated_at=report.generated_at,
        links=links(base, report),
    )


async def generate(
    uow: UnitOfWork,
    *,
    community_id: uuid.UUID,
    period: analysis.Period,
    start: date,
    zone_name: str,
    floor: Floor,
    trigger: str,
    base_url: str,
    core_threshold: int,
    core_window_days: int,
    report_id: uuid.UUID | None = None,
) -> Report:
    """Build, render, store and announce one report (in the caller's transaction)."""
    doc = await build(
        uow.session,
        community_id=community_id,
        period=period,
        start=start,
        zone_name=zone_name,
        floor=floor,
        core_threshold=core_threshold,
        core_window_days=core_window_days,
    )
    svg, png = await asyncio.to_thread(render.charts, doc)
    report = Report(
        id=report_id or uuid7(),
        community_id=community_id,
        period=period,
        period_start=start,
        period_end=date.fromisoformat(doc["period_end"]),
        trigger=trigger,
        time_zone=zone_name,
        body=json.dumps(doc, sort_keys=True),
        csv=render.to_csv(doc),
        svg=svg,
        png=png,
    )
    uow.session.add(report)
    await uow.session.flush()
    await uow.record(
        ReportPublished(
            report_id=report.id,
            community_id=community_id,
            period=period,
            period_start=start,
            period_end=report.period_end,
            trigger="scheduled" if trigger == "scheduled" else "on_demand",
            url=links(base_url, report)["json"].removesuffix("/json"),
            published_at=utcnow(),
        ),
        subject=str(community_id),
    )
    return report


async def claim(
    session: AsyncSession, *, community_id: uuid.UUID, period: str, start: date
) -> uuid.UUID | None:
    """Claim the scheduled report of a community and period: its id, or None if taken.

    `INSERT ... ON CONFLICT DO NOTHING` on the claim's primary key: of several replicas passing
    at once exactly one gets the row (the others' inserts wait for its commit and then do
    nothing), and a rolled-back generation frees the claim for the next pass.
    """
    table: Any = ReportClaim.__table__  # type: ignore[attr-defined]
    report_id = uuid7()
    stmt = (
        upsert_insert(session, table)
        .values(
            community_id=community_id,
            period=period,
            period_start=start,
            report_id=report_id,
            claimed_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["community_id", "period", "period_start"])
        .returning(table.c.report_id)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


def due_periods(now: datetime, zone: ZoneInfo) -> list[tuple[analysis.Period, date]]:
    """The last completed week, month and quarter in the community's time zone."""
    today = now.astimezone(zone).date()
    out: list[tuple[analysis.Period, date]] = []
    for period in ("week", "month", "quarter"):
        p: analysis.Period = period  # type: ignore[assignment]
        out.append((p, analysis.previous_period(analysis.period_start(today, p), p)))
    return out
