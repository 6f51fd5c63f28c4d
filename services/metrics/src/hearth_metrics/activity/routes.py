"""Activity measures over HTTP: per community, any range of local days, privacy floor applied.

Every route checks `require_reader` with the measure's name (`activity`, `retention`,
`leaderboard`, `members`, `care`): owners, admins, staff and `metrics:read` keys read all;
members read only what the community publishes.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query

from hearth_metrics.activity import measures
from hearth_metrics.activity.models import (
    KINDS,
    ActiveMembers,
    DailyActivity,
    LeaderboardEntry,
    MemberDayActivity,
    RetentionCohort,
    WinBackRate,
)
from hearth_metrics.communities.service import Policy, policy_of
from hearth_metrics.permissions import require_reader
from hearth_metrics.privacy import (
    Figure,
    Floor,
    aligned,
    guard,
    guard_parts,
    guard_share,
    require_rankings,
)
from hearth_metrics.settings import MetricsSettings
from servicekit.deps import RuntimeDep, SessionDep
from servicekit.identity import CurrentPrincipal
from servicekit.problems import Problem
from servicekit.runtime import settings_of

router = APIRouter(tags=["metrics"])
MAX_DAYS = 750

Start = Annotated[date | None, Query(description="first local day (default: 30 days back)")]
End = Annotated[date | None, Query(description="last local day (default: today)")]


def _range(policy: Policy, start: date | None, end: date | None) -> tuple[date, date, date]:
    today = datetime.now(ZoneInfo(policy.time_zone)).date()
    end = end or today
    start = start or end - timedelta(days=29)
    if start > end:
        raise Problem(422, "invalid-range", "Invalid range", "start is after end")
    if (end - start).days + 1 > MAX_DAYS:
        raise Problem(422, "invalid-range", "Invalid range", f"at most {MAX_DAYS} days at once")
    return start, end, today


async def _open(
    session: Any, runtime: Any, actor: Any, community_id: uuid.UUID, what: str
) -> tuple[Policy, Floor]:
    await require_reader(session, actor, community_id, what=what)
    settings = settings_of(runtime, MetricsSettings)
    policy = await policy_of(session, community_id=community_id, settings=settings)
    return policy, Floor.of(policy)


def _put(out: dict[str, Any], hidden: dict[str, str], name: str, fig: Figure) -> None:
    out[name] = fig.value
    if fig.suppressed:
        hidden[name] = fig.suppressed


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


@router.get("/communities/{community_id}/activity/daily")
async def daily_activity(
    community_id: uuid.UUID,
    session: SessionDep,
    runtime: RuntimeDep,
    actor: CurrentPrincipal,
    start: Start = None,
    end: End = None,
) -> list[DailyActivity]:
    """Per local day: distinct active members, posts, comments, reactions, votes, ..."""
    policy, floor = await _open(session, runtime, actor, community_id, "activity")
    first, last, _ = _range(policy, start, end)
    out = []
    for d in await measures.daily_activity(
        session, community_id=community_id, start=first, end=last
    ):
        row: dict[str, Any] = {}
        hidden: dict[str, str] = {}
        _put(row, hidden, "active", guard(d.active, people=d.active, floor=floor))
        for k in KINDS:
            _put(row, hidden, k, guard(d.counts[k], people=d.active, floor=floor))
        values = {k: _int(v) for k, v in row.items()}
        out.append(DailyActivity.model_validate({"day": d.day, **values, "suppressed": hidden}))
    return out


@router.get("/communities/{community_id}/activity/active")
async def active_members(
    community_id: uuid.UUID,
    session: SessionDep,
    runtime: RuntimeDep,
    actor: CurrentPrincipal,
    start: Start = None,
    end: End = None,
    window: Literal["rolling", "calendar"] = "rolling",
) -> list[ActiveMembers]:
    """DAU, WAU, MAU and stickiness per local day (internal communities: calendar windows)."""
    policy, floor = await _open(session, runtime, actor, community_id, "activity")
    first, last, _ = _range(policy, start, end)
    if floor.applies:
        window = "calendar"  # fixed buckets only, so that two queries cannot be differenced
    out = []
    for a in await measures.active_series(
        session, community_id=community_id, start=first, end=last, window=window
    ):
        row: dict[str, Any] = {}
        hidden: dict[str, str] = {}
        _put(row, hidden, "dau", guard(a.dau, people=a.dau, floor=floor))
        _put(row, hidden, "wau", guard(a.wau, people=a.wau, floor=floor))
        _put(row, hidden, "mau", guard(a.mau, people=a.mau, floor=floor))
        stick = guard_share(a.stickiness, part=a.dau, whole=a.mau, floor=floor)
        _put(row, hidden, "stickiness", stick)
        out.append(
            ActiveMembers(
                day=a.day,
                window=window,
                dau=_int(row["dau"]),
                wau=_int(row["wau"]),
                mau=_int(row["mau"]),
                stickiness=row["stickiness"],
                suppressed=hidden,
            )
        )
    return out


@router.get("/communities/{community_id}/retention")
async def retention(
    community_id: uuid.UUID,
    session: SessionDep,
    runtime: RuntimeDep,
    actor: CurrentPrincipal,
    start: Start = None,
    end: End = None,
    grain: Literal["day", "week", "month"] = "week",
    days: Annotated[list[int] | None, Query(description="the n of Dn (default 1, 7, 30)")] = None,
    by: Literal["all", "channel"] = "all",
) -> list[RetentionCohort]:
    """Join cohorts by local day, week or month with Dn retention, optionally per invite channel."""
    policy, floor = await _open(session, runtime, actor, community_id, "retention")
    ns = sorted(set(days or [1, 7, 30]))
    if any(n < 0 or n > 400 for n in ns) or len(ns) > 20:
        raise Problem(422, "invalid-days", "Invalid days", "each n is 0..400, at most 20 of them")
    first, last, today = _range(policy, start, end)
    first, last = aligned(first, last, grain=grain)
    cohorts = await measures.retention(
        session,
        community_id=community_id,
        start=first,
        end=last,
        today=today,
        grain=grain,
        days=ns,
        by_channel=by == "channel",
    )
    sizes: dict[Any, Figure] = {}
    if by == "channel":  # the parts of each bucket's published whole: complements too
        for bucket in sorted({c.cohort for c in cohorts}):
            parts = {c.channel: (c.size, c.size) for c in cohorts if c.cohort == bucket}
            for channel, fig in guard_parts(parts, floor=floor).items():
                sizes[(bucket, channel)] = fig
    out = []
    for c in cohorts:
        hidden: dict[str, str] = {}
        size = sizes.get((c.cohort, c.channel)) or guard(c.size, people=c.size, floor=floor)
        if size.suppressed:
            hidden["size"] = size.suppressed
        retained: dict[str, int | None] = {}
        rates: dict[str, float | None] = {}
        for n in ns:
            kept = c.retained.get(n)
            if kept is None:
                retained[str(n)] = rates[str(n)] = None
                continue
            fig = guard_share(c.rate(n), part=kept, whole=c.size, floor=floor)
            if size.suppressed or fig.suppressed:
                hidden[f"D{n}"] = size.suppressed or fig.suppressed or ""
                retained[str(n)] = rates[str(n)] = None
            else:
                retained[str(n)], rates[str(n)] = kept, fig.value
        out.append(
            RetentionCohort(
                cohort=c.cohort,
                grain=grain,
                channel=c.channel,
                size=_int(size.value),
                retained=retained,
                rates=rates,
                suppressed=hidden,
            )
        )
    return out


@router.get("/communities/{community_id}/win-back")
async def win_back(
    community_id: uuid.UUID,
    session: SessionDep,
    runtime: RuntimeDep,
    actor: CurrentPrincipal,
    start: Start = None,
    end: End = None,
) -> WinBackRate:
    """The share of care journeys started in the range that won the member back."""
    policy, floor = await _open(session, runtime, actor, community_id, "care")
    first, last, _ = _range(policy, start, end)
    w = await measures.win_back(
        session, community_id=community_id, start=first, end=last, zone=ZoneInfo(policy.time_zone)
    )
    hidden: dict[str, str] = {}
    started = guard(w.started, people=w.started, floor=floor)
    rate = guard_share(w.rate, part=w.won_back, whole=w.started, floor=floor)
    if started.suppressed:
        hidden["started"] = started.suppressed
    if rate.suppressed:
        hidden["rate"] = hidden["won_back"] = rate.suppressed
    return WinBackRate(
        start=first,
        end=last,
        started=_int(started.value),
        won_back=None if rate.suppressed else w.won_back,
        rate=rate.value,
        suppressed=hidden,
    )


@router.get("/communities/{community_id}/leaderboard")
async def leaderboard(
    community_id: uuid.UUID,
    session: SessionDep,
    runtime: RuntimeDep,
    actor: CurrentPrincipal,
    start: Start = None,
    end: End = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> list[LeaderboardEntry]:
    """The top contributors over the range (off in internal communities unless enabled)."""
    policy, floor = await _open(session, runtime, actor, community_id, "leaderboard")
    require_rankings(floor)
    first, last, _ = _range(policy, start, end)
    top = await measures.top_contributors(
        session, community_id=community_id, start=first, end=last, limit=limit
    )
    return [
        LeaderboardEntry(user_id=t.user_id, contributions=t.contributions, **t.counts) for t in top
    ]


@router.get("/communities/{community_id}/activity/members")
async def member_activity(
    community_id: uuid.UUID,
    session: SessionDep,
    runtime: RuntimeDep,
    actor: CurrentPrincipal,
    start: Start = None,
    end: End = None,
    user_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> list[MemberDayActivity]:
    """Activity per member per local day (per-person: off in internal communities unless
    rankings are enabled)."""
    policy, floor = await _open(session, runtime, actor, community_id, "members")
    require_rankings(floor)
    first, last, _ = _range(policy, start, end)
    rows = await measures.member_activity(
        session, community_id=community_id, start=first, end=last, user_id=user_id, limit=limit
    )
    return [MemberDayActivity(user_id=r.user_id, day=r.day, **r.counts) for r in rows]
