"""Metrics' use cases: keyword-only functions over a session or a unit of work."""

from __future__ import annotations

import uuid
from typing import Any, cast

from sqlalchemy import func
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_metrics.counters.events import CommunityMeasured, MetricName
from hearth_metrics.counters.models import (
    CATALOGUE,
    CommunityCounts,
    CommunityCountsPublic,
    Counter,
    MetricDescription,
)
from servicekit.db import upsert_insert
from servicekit.deps import UnitOfWork
from servicekit.ids import utcnow


async def count(*, uow: UnitOfWork, community_id: uuid.UUID, counter: Counter) -> float:
    """Add one to a community's counter and record the new value as a measurement; returns it.

    `INSERT ... ON CONFLICT DO UPDATE SET n = n + 1 RETURNING n` is one statement on both
    PostgreSQL and SQLite (≥ 3.35), so handlers running at once (one per producing stream, or
    several replicas) never lose an increment, the first event of a new community cannot race
    another into a duplicate row, and the value published is exactly the one this bump made.
    """
    session = uow.session
    table: Any = CommunityCounts.__table__  # type: ignore[attr-defined]
    name = counter.value
    # `measured_at` must order measurements as their values were made, since members keeps the
    # newest by it. On PostgreSQL, clock_timestamp() in the update is read once the row lock is
    # held (a concurrent bump of the same row waits for our commit), so a later value never gets
    # an earlier time. SQLite takes its write lock at BEGIN IMMEDIATE (the handler's inbox
    # insert, before this), so the application clock read here is already serialized.
    postgres = session.bind is not None and session.bind.dialect.name == "postgresql"
    clock: Any = func.clock_timestamp() if postgres else utcnow()
    stmt = upsert_insert(session, table).values(
        community_id=community_id, updated_at=clock, **{name: 1}
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["community_id"],
        set_={name: table.c[name] + 1, "updated_at": clock},
    ).returning(table.c[name], table.c.updated_at)
    value, measured_at = (await session.execute(stmt)).one()
    await uow.record(
        CommunityMeasured(
            community_id=community_id,
            metric=cast(MetricName, counter.value),
            value=float(value),
            measured_at=measured_at,
        ),
        subject=str(community_id),
    )
    return float(value)


async def get_counts(*, session: AsyncSession, community_id: uuid.UUID) -> CommunityCountsPublic:
    """A community's counters; zeros (and no updated_at) when nothing was counted yet."""
    row = await session.get(CommunityCounts, community_id)
    if row is None:
        # Metrics learns communities only from their facts, so "unknown" and "nothing happened
        # yet" look the same here; zeros are the true answer to both.
        return CommunityCountsPublic(community_id=community_id)
    return CommunityCountsPublic.model_validate(row, from_attributes=True)


def catalogue() -> list[MetricDescription]:
    """Every metric a community goal can be set on, with a one-line description."""
    return [MetricDescription(name=name, description=text) for name, text in CATALOGUE.items()]
