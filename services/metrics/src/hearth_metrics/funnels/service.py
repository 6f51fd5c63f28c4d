"""Funnel milestones, maintained per fact, and the funnel query over them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_metrics.funnels.models import Contribution, Funnel, FunnelStage, MemberMilestone
from hearth_metrics.measures.rows import upsert_fact
from servicekit.db import upsert_insert

Floor = Callable[[int], tuple[int | None, str | None]]
STAGES = ("visitor", "member", "contributor", "core")


async def visited(
    session: AsyncSession, *, community_id: uuid.UUID, user_id: uuid.UUID, at: datetime
) -> None:
    """A person showed interest (applied, redeemed an invite): their visit is at most `at`."""
    await upsert_fact(
        session,
        MemberMilestone,
        key={"community_id": community_id, "user_id": user_id},
        earliest={"visited_at": at},
    )


async def joined(
    session: AsyncSession,
    *,
    community_id: uuid.UUID,
    user_id: uuid.UUID,
    at: datetime,
    channel: str | None,
) -> None:
    """A person joined: a member (and a visitor) since at most `at`, through `channel`."""
    await upsert_fact(
        session,
        MemberMilestone,
        key={"community_id": community_id, "user_id": user_id},
        earliest={"visited_at": at, "joined_at": at},
        follows={"join_channel": ("joined_at", channel[:80] if channel else None)},
    )


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
    await upsert_fact(
        session,
        MemberMilestone,
        key={"community_id": community_id, "user_id": user_id},
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
    since: datetime,
    until: datetime,
    threshold: int,
    window_days: int,
    floor: Floor,
    cell_of: Callable[[datetime], object] | None = None,
) -> Funnel:
    """The people first seen in [since, until) and how many of them went on, by `until`, to
    join, to contribute and to become core members (each stage within the one before).

    One indexed range over member_milestones, counted with FILTER: never the raw events.
    With `cell_of` (internal communities: the local ISO week of a visit), every week's counts
    must pass the floor too, or the whole funnel is suppressed: then any two answers differ by
    whole weeks that each pass it, and subtraction reveals no one.
    """
    m: Any = MemberMilestone
    member = m.joined_at.is_not(None) & (m.joined_at < until)
    contributor = member & m.contributed_at.is_not(None) & (m.contributed_at < until)
    core = contributor & m.core_at.is_not(None) & (m.core_at < until)
    row = (
        await session.execute(
            select(
                func.count(),
                func.count().filter(member),
                func.count().filter(contributor),
                func.count().filter(core),
            ).where(m.community_id == community_id, m.visited_at >= since, m.visited_at < until)
        )
    ).one()
    counts = [int(x) for x in row]
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
