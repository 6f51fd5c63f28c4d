"""Activity measures from the rollups (never the raw events): plain lists for routes and reports.

Days are local days of the community's time zone (the ingest files each fact under its local
day). Distinct counts are exact: the daily bitmaps of member numbers are unioned for windows
(WAU, MAU) and intersected with join cohorts for retention. Figures here are raw; the routes
apply the privacy floor (hearth_metrics.privacy), and so must any other caller that publishes.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pyroaring import BitMap
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_metrics.activity.models import (
    KINDS,
    CareJourney,
    Cohort,
    CommunityDay,
    MemberDay,
    MemberKey,
)
from hearth_metrics.privacy import aligned

Grain = Literal["day", "week", "month"]
Window = Literal["rolling", "calendar"]


def _t(model: object) -> sa.Table:
    return model.__table__  # type: ignore[attr-defined, no-any-return]


def days_between(start: date, end: date) -> list[date]:
    """Every day from start to end, both included."""
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def bucket_of(day: date, grain: Grain) -> date:
    """The first day of the day's bucket (itself, its ISO week's Monday, its month's 1st)."""
    if grain == "day":
        return day
    if grain == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


async def active_bitmaps(
    session: AsyncSession, *, community_id: uuid.UUID, start: date, end: date
) -> dict[date, BitMap]:
    """The set of members active on each day of the range that had any activity."""
    table = _t(CommunityDay)
    rows = await session.execute(
        sa.select(table.c.day, table.c.members).where(
            table.c.community_id == community_id, table.c.day >= start, table.c.day <= end
        )
    )
    return {day: BitMap.deserialize(blob) for day, blob in rows.all()}


@dataclass
class DayActivity:
    """One local day: what members did, and how many distinct members were active."""

    day: date
    active: int
    counts: dict[str, int]


async def daily_activity(
    session: AsyncSession, *, community_id: uuid.UUID, start: date, end: date
) -> list[DayActivity]:
    """Posts, comments, reactions, votes, registrations, attendance, shares and DAU per day."""
    table = _t(CommunityDay)
    rows = await session.execute(
        sa.select(table.c.day, table.c.active, *(table.c[k] for k in KINDS)).where(
            table.c.community_id == community_id, table.c.day >= start, table.c.day <= end
        )
    )
    found = {r.day: r for r in rows.all()}
    out = []
    for day in days_between(start, end):
        r = found.get(day)
        counts = {k: (getattr(r, k) if r else 0) for k in KINDS}
        out.append(DayActivity(day=day, active=r.active if r else 0, counts=counts))
    return out


@dataclass
class MemberActivity:
    """What one member did in one community on one local day."""

    user_id: uuid.UUID
    day: date
    counts: dict[str, int]


async def member_activity(
    session: AsyncSession,
    *,
    community_id: uuid.UUID,
    start: date,
    end: date,
    user_id: uuid.UUID | None = None,
    limit: int = 1000,
) -> list[MemberActivity]:
    """Activity per member per day (one member's, or everyone's by day then member)."""
    md, keys = _t(MemberDay), _t(MemberKey)
    stmt = (
        sa.select(keys.c.user_id, md.c.day, *(md.c[k] for k in KINDS))
        .join(keys, keys.c.n == md.c.member)
        .where(md.c.community_id == community_id, md.c.day >= start, md.c.day <= end)
        .order_by(md.c.day, keys.c.user_id)
        .limit(limit)
    )
    if user_id is not None:
        stmt = stmt.where(keys.c.user_id == user_id)
    rows = (await session.execute(stmt)).all()
    return [MemberActivity(r.user_id, r.day, {k: getattr(r, k) for k in KINDS}) for r in rows]


@dataclass
class Contributor:
    """A member and their contributions over a range (for a leaderboard)."""

    user_id: uuid.UUID
    contributions: int
    counts: dict[str, int]


async def top_contributors(
    session: AsyncSession, *, community_id: uuid.UUID, start: date, end: date, limit: int = 10
) -> list[Contributor]:
    """The members with the most contributions over the range (ties by user id)."""
    md, keys = _t(MemberDay), _t(MemberKey)
    sums = [sa.func.sum(md.c[k]).label(k) for k in KINDS]
    total = sum((md.c[k] for k in KINDS), sa.literal(0))
    stmt = (
        sa.select(keys.c.user_id, sa.func.sum(total).label("total"), *sums)
        .join(keys, keys.c.n == md.c.member)
        .where(md.c.community_id == community_id, md.c.day >= start, md.c.day <= end)
        .group_by(keys.c.user_id)
        .order_by(sa.desc("total"), keys.c.user_id)
        .limit(limit)
    )
    rows = (await session.execute(stmt)).all()
    return [
        Contributor(r.user_id, int(r.total), {k: int(getattr(r, k)) for k in KINDS}) for r in rows
    ]


@dataclass
class ActiveDay:
    """Distinct active members: that day, its week and month (rolling or calendar windows)."""

    day: date
    dau: int
    wau: int
    mau: int

    @property
    def stickiness(self) -> float | None:
        """DAU / MAU (None when nobody was active in the month)."""
        return self.dau / self.mau if self.mau else None


async def active_series(
    session: AsyncSession,
    *,
    community_id: uuid.UUID,
    start: date,
    end: date,
    window: Window = "rolling",
) -> list[ActiveDay]:
    """DAU, WAU, MAU for each day: rolling (the 7 / 30 days ending that day) or calendar
    (the day's ISO week / month so far, through that day)."""
    first = start - timedelta(days=29) if window == "rolling" else bucket_of(start, "month")
    first = min(first, bucket_of(start, "week"))
    maps = await active_bitmaps(session, community_id=community_id, start=first, end=end)
    seq = [maps.get(d, EMPTY) for d in days_between(first, end)]
    offset = (start - first).days
    if window == "rolling":
        wau, mau = rolling_cardinalities(seq, 7), rolling_cardinalities(seq, 30)
    else:
        days = days_between(first, end)
        wau = running_cardinalities(seq, [bucket_of(d, "week") for d in days])
        mau = running_cardinalities(seq, [bucket_of(d, "month") for d in days])
    return [
        ActiveDay(day=day, dau=len(seq[i]), wau=wau[i], mau=mau[i])
        for i, day in enumerate(days_between(start, end), start=offset)
    ]


EMPTY = BitMap()


def rolling_cardinalities(seq: Sequence[BitMap], w: int) -> list[int]:
    """|seq[i-w+1] | ... | seq[i]| (the union's size) for every i: about three unions per i.

    Blocks of w days: each window spans the end of one block and the start of the next, so it
    is (suffix union of its first block) | (prefix union of its last block), both built in one
    pass; only the cardinality of that last union is needed (`union_cardinality`).
    """
    n = len(seq)
    prefix: list[BitMap] = [EMPTY] * n
    suffix: list[BitMap] = [EMPTY] * n
    for block in range(0, n, w):
        stop = min(block + w, n)
        acc = BitMap()
        for i in range(block, stop):
            acc = acc | seq[i]
            prefix[i] = acc
        acc = BitMap()
        for i in range(stop - 1, block - 1, -1):
            acc = acc | seq[i]
            suffix[i] = acc
    out = []
    for i in range(n):
        lo = max(0, i - w + 1)
        if lo // w == i // w:  # the window lies in one block (it starts the block or is cut)
            out.append(len(prefix[i]) if lo % w == 0 else len(BitMap.union(*seq[lo : i + 1])))
        else:
            out.append(suffix[lo].union_cardinality(prefix[i]))
    return out


def running_cardinalities(seq: Sequence[BitMap], buckets: Sequence[date]) -> list[int]:
    """|union of seq since the start of i's bucket, through i| for every i."""
    out = []
    acc = BitMap()
    for i, bitmap in enumerate(seq):
        if i == 0 or buckets[i] != buckets[i - 1]:
            acc = BitMap()
        acc = acc | bitmap
        out.append(len(acc))
    return out


@dataclass
class CohortRetention:
    """A join cohort (bucket start, channel or None for all) and who came back on day n."""

    cohort: date
    channel: str | None
    size: int
    retained: dict[int, int | None] = field(default_factory=dict)  # None: not measurable yet

    def rate(self, n: int) -> float | None:
        """retained[n] / size (None while not measurable or the cohort is empty)."""
        kept = self.retained.get(n)
        return kept / self.size if kept is not None and self.size else None


async def retention(
    session: AsyncSession,
    *,
    community_id: uuid.UUID,
    start: date,
    end: date,
    today: date,
    grain: Grain = "week",
    days: Sequence[int] = (1, 7, 30),
    by_channel: bool = False,
) -> list[CohortRetention]:
    """Cohorts of first joins by local day, week or month, with Dn retention for each n.

    A member of the cohort of day d is retained at Dn when active on day d + n (the classic
    n-day retention). A bucket's Dn is measurable once d + n ≤ today for its every join day.
    """
    first, last = aligned(start, end, grain=grain)
    table = _t(Cohort)
    rows = await session.execute(
        sa.select(table.c.day, table.c.channel, table.c.members).where(
            table.c.community_id == community_id, table.c.day >= first, table.c.day <= last
        )
    )
    joined: dict[date, dict[str, BitMap]] = defaultdict(dict)
    for day, channel, blob in rows.all():
        joined[day][channel] = BitMap.deserialize(blob)
    lo, hi = min(days, default=0), max(days, default=0)
    maps = await active_bitmaps(
        session,
        community_id=community_id,
        start=first + timedelta(days=lo),
        end=last + timedelta(days=hi),
    )
    channels: list[str | None] = [None]
    if by_channel:
        channels = [*sorted({ch for per_day in joined.values() for ch in per_day})]
    cells: dict[tuple[date, str | None], CohortRetention] = {}
    for bucket in sorted({bucket_of(d, grain) for d in days_between(first, last)}):
        for channel in channels:
            cells[(bucket, channel)] = CohortRetention(bucket, channel, 0, dict.fromkeys(days, 0))
    empty = BitMap()
    for day, per_channel in joined.items():
        for channel, members in per_channel.items():
            cell = cells[(bucket_of(day, grain), channel if by_channel else None)]
            cell.size += len(members)
            for n in days:
                kept = members.intersection_cardinality(maps.get(day + timedelta(days=n), empty))
                cell.retained[n] = (cell.retained[n] or 0) + kept
    for (bucket, _), cell in cells.items():
        bucket_last = aligned(bucket, bucket, grain=grain)[1]
        for n in days:  # measurable once the bucket's last join day has reached day n
            if bucket_last + timedelta(days=n) > today:
                cell.retained[n] = None
    return [cells[k] for k in sorted(cells, key=lambda k: (k[0], k[1] or ""))]


@dataclass
class WinBack:
    """Care journeys started in a range, and how many of them won the member back."""

    started: int
    won_back: int

    @property
    def rate(self) -> float | None:
        """won_back / started (None when none started)."""
        return self.won_back / self.started if self.started else None


async def win_back(
    session: AsyncSession, *, community_id: uuid.UUID, start: date, end: date, zone: ZoneInfo
) -> WinBack:
    """The win-back rate of the care journeys started in [start, end] (local days)."""
    table = _t(CareJourney)
    lo = sa.func.coalesce(table.c.started_at, table.c.won_back_at)
    begin = datetime.combine(start, time.min, zone)
    finish = datetime.combine(end + timedelta(days=1), time.min, zone)
    row = (
        await session.execute(
            sa.select(
                sa.func.count(),
                sa.func.count(table.c.won_back_at),
            ).where(table.c.community_id == community_id, lo >= begin, lo < finish)
        )
    ).one()
    return WinBack(started=int(row[0]), won_back=int(row[1]))
