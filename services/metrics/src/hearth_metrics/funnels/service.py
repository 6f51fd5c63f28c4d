"""Funnel milestones, maintained per fact, and the funnel query over them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_metrics.funnels.models import (
    Contribution,
    Funnel,
    FunnelCell,
    FunnelStage,
    MemberMilestone,
)
from servicekit.db import upsert_insert

Floor = Callable[[int], tuple[int | None, str | None]]
STAGES = ("visitor", "member", "contributor", "core")


Cell = tuple[date, str, date]


def cells(row: MemberMilestone, zone: ZoneInfo) -> set[Cell]:
    """The (visit day, stage, reach day) cells one person's milestones fall in.

    A stage's reach is the latest of its own time and the times of the stages before it, so
    "reached by the range's end" keeps each stage inside the one before.
    """
    if row.visited_at is None:
        return set()
    visit = row.visited_at.astimezone(zone).date()
    out: set[Cell] = {(visit, "visitor", visit)}
    reach: datetime | None = None
    for stage, at in (
        ("member", row.joined_at),
        ("contributor", row.contributed_at),
        ("core", row.core_at),
    ):
        if at is None:
            break
        reach = at if reach is None or at > reach else reach
        out.add((visit, stage, reach.astimezone(zone).date()))
    return out


async def _bump(session: AsyncSession, community_id: uuid.UUID, cell: Cell, delta: int) -> None:
    table: Any = FunnelCell.__table__  # type: ignore[attr-defined]
    visit_day, stage, reach_day = cell
    stmt = upsert_insert(session, table).values(
        community_id=community_id,
        visit_day=visit_day,
        stage=stage,
        reach_day=reach_day,
        people=delta,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["community_id", "visit_day", "stage", "reach_day"],
        set_={"people": table.c.people + stmt.excluded.people},
    )
    await session.execute(stmt)


async def _advance(
    session: AsyncSession,
    *,
    community_id: uuid.UUID,
    user_id: uuid.UUID,
    zone: ZoneInfo,
    earliest: dict[str, datetime | None],
    channel: str | None = None,
) -> None:
    """Move the person's milestones earlier (never later) and their cells with them.

    The row is locked first (`FOR UPDATE` on PostgreSQL; SQLite's write lock is already held),
    so two facts of one person on two replicas apply one after the other.
    """
    table: Any = MemberMilestone.__table__  # type: ignore[attr-defined]
    await session.execute(
        upsert_insert(session, table)
        .values(community_id=community_id, user_id=user_id)
        .on_conflict_do_nothing(index_elements=["community_id", "user_id"])
    )
    m: Any = MemberMilestone
    row = (
        await session.execute(
            select(m)
            .where(m.community_id == community_id, m.user_id == user_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    before = cells(row, zone)
    changed = False
    for name, at in earliest.items():
        current = getattr(row, name)
        if at is not None and (current is None or at < current):
            setattr(row, name, at)
            changed = True
            if name == "joined_at":
                row.join_channel = channel[:80] if channel else None
    if not changed:
        return
    session.add(row)
    after = cells(row, zone)
    # One pass in one global order: concurrent handlers lock shared cells in the same order.
    deltas = {cell: -1 for cell in before - after} | {cell: 1 for cell in after - before}
    for cell in sorted(deltas):
        await _bump(session, community_id, cell, deltas[cell])
    await session.flush()


async def visited(
    session: AsyncSession,
    *,
    community_id: uuid.UUID,
    user_id: uuid.UUID,
    at: datetime,
    zone: ZoneInfo,
) -> None:
    """A person showed interest (applied, redeemed an invite): their visit is at most `at`."""
    await _advance(
        session,
        community_id=community_id,
        user_id=user_id,
        zone=zone,
        earliest={"visited_at": at},
    )


async def joined(
    session: AsyncSession,
    *,
    community_id: uuid.UUID,
    user_id: uuid.UUID,
    at: datetime,
    channel: str | None,
    zone: ZoneInfo,
) -> None:
    """A person joined: a member (and a visitor) since at most `at`, through `channel`."""
    await _advance(
        session,
        community_id=community_id,
        user_id=user_id,
        zone=zone,
        earliest={"visited_at": at, "joined_at": at},
        channel=channel,
    )


async def rebuild_cells(session: AsyncSession, *, community_id: uuid.UUID, zone: ZoneInfo) -> int:
    """Recompute a community's cells from its milestone rows (after a time zone change)."""
    f: Any = FunnelCell
    m: Any = MemberMilestone
    await session.execute(delete(f).where(f.community_id == community_id))
    counts: dict[Cell, int] = {}
    rows = await session.execute(select(m).where(m.community_id == community_id))
    for row in rows.scalars():
        for cell in cells(row, zone):
            counts[cell] = counts.get(cell, 0) + 1
    for cell, n in sorted(counts.items()):
        await _bump(session, community_id, cell, n)
    return len(counts)


def core_time(times: list[datetime], *, threshold: int, window: timedelta) -> datetime | None:
    """The first time `threshold` contributions fall inside one `window` (sorted input)."""
    for i in range(len(times) - threshold + 1):
        if times[i + threshold - 1] - times[i] < window:
            return times[i + threshold - 1]
    return None


async def contributed(
    session: AsyncSession,
    *,
    community_id: uuid.UUID,
    user_id: uuid.UUID,
    item_id: uuid.UUID,
    kind: str,
    at: datetime,
    threshold: int,
    window: timedelta,
    zone: ZoneInfo,
) -> None:
    """A published post or comment: sets `contributed_at`, and `core_at` once the member has
    `threshold` contributions inside one `window`; the item id makes a second copy a no-op."""
    table: Any = Contribution.__table__  # type: ignore[attr-defined]
    stmt = (
        upsert_insert(session, table)
        .values(item_id=item_id, community_id=community_id, user_id=user_id, kind=kind, at=at)
        .on_conflict_do_nothing(index_elements=["item_id"])
        .returning(table.c.item_id)
    )
    if (await session.execute(stmt)).scalar_one_or_none() is None:
        return
    c: Any = Contribution
    # Only contributions within one window of this one can complete a window that contains it.
    near = (
        (
            await session.execute(
                select(c.at)
                .where(
                    c.community_id == community_id,
                    c.user_id == user_id,
                    c.at > at - window,
                    c.at < at + window,
                )
                .order_by(c.at)
            )
        )
        .scalars()
        .all()
    )
    core = core_time(list(near), threshold=threshold, window=window)
    await _advance(
        session,
        community_id=community_id,
        user_id=user_id,
        zone=zone,
        earliest={"contributed_at": at, "core_at": core},
    )


async def _small_cell(
    session: AsyncSession,
    community_id: uuid.UUID,
    since: datetime,
    until: datetime,
    cell_of: Callable[[datetime], object],
    floor: Floor,
) -> str | None:
    m: Any = MemberMilestone
    rows = await session.execute(
        select(m.visited_at, m.joined_at, m.contributed_at, m.core_at).where(
            m.community_id == community_id, m.visited_at >= since, m.visited_at < until
        )
    )
    cells: dict[object, list[int]] = {}
    for visited_at, *later in rows.all():
        counts = cells.setdefault(cell_of(visited_at), [0, 0, 0, 0])
        counts[0] += 1
        for i, at in enumerate(later):
            if at is None or at >= until:
                break
            counts[i + 1] += 1
    for counts in cells.values():
        for n in counts:
            if n and floor(n)[1] is not None:
                return "a week of this range has fewer people than the privacy floor"
    return None


def _rate(count: int, base: int) -> float | None:
    return round(count / base, 6) if base else None


async def funnel(
    session: AsyncSession,
    *,
    community_id: uuid.UUID,
    start_day: date,
    end_day: date,
    since: datetime,
    until: datetime,
    threshold: int,
    window_days: int,
    floor: Floor,
    cell_of: Callable[[datetime], object] | None = None,
) -> Funnel:
    """The people first seen on the local days [start_day, end_day) (the instants [since,
    until)) and how many of them went on, by the end, to join, to contribute and to become
    core members (each stage within the one before).

    One primary-key range over funnel_cells, summed per stage: never the raw events, and
    never one row per person. With `cell_of` (internal communities: the local ISO week of a
    visit), every week's counts must pass the floor too, or the whole funnel is suppressed:
    then any two answers differ by whole weeks that each pass it, and subtraction reveals no
    one.
    """
    f: Any = FunnelCell
    summed = await session.execute(
        select(f.stage, func.sum(f.people))
        .where(
            f.community_id == community_id,
            f.visit_day >= start_day,
            f.visit_day < end_day,
            f.reach_day < end_day,
        )
        .group_by(f.stage)
    )
    by_stage = {stage: int(n or 0) for stage, n in summed.all()}
    counts = [by_stage.get(stage, 0) for stage in STAGES]
    stages: list[FunnelStage] = []
    shown = [floor(n) for n in counts]
    hidden = next((why for _, why in shown if why is not None), None)
    if hidden is None and cell_of is not None:
        hidden = await _small_cell(session, community_id, since, until, cell_of, floor)
    for i, name in enumerate(STAGES):
        if hidden is not None:
            # One suppressed stage hides every rate: a rate and its neighbour's count would
            # give the suppressed count back.
            stages.append(
                FunnelStage(
                    stage=name,
                    count=shown[i][0],
                    rate_from_previous=None,
                    rate_from_visitor=None,
                    suppressed=shown[i][1] or hidden,
                )
            )
            continue
        stages.append(
            FunnelStage(
                stage=name,
                count=counts[i],
                rate_from_previous=_rate(counts[i], counts[i - 1]) if i else None,
                rate_from_visitor=_rate(counts[i], counts[0]) if i else None,
            )
        )
    if hidden is not None:
        for s in stages:
            s.count = None
    return Funnel(
        community_id=community_id,
        since=since,
        until=until,
        core_threshold=threshold,
        core_window_days=window_days,
        stages=stages,
    )
