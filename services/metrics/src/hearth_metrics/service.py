"""Metrics' use cases: keyword-only functions over a session."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_metrics.models import CommunityCounts, CommunityCountsPublic, Counter
from servicekit.db import upsert_insert
from servicekit.ids import utcnow


async def count(*, session: AsyncSession, community_id: uuid.UUID, counter: Counter) -> None:
    """Add one to a community's counter in a single atomic upsert.

    `INSERT ... ON CONFLICT DO UPDATE SET n = n + 1` is one statement on both PostgreSQL and
    SQLite, so handlers running at once (one per producing stream) never lose an increment,
    and the first event of a new community cannot race another into a duplicate row.
    """
    table: Any = CommunityCounts.__table__  # type: ignore[attr-defined]
    name = counter.value
    stmt = upsert_insert(session, table).values(
        community_id=community_id, updated_at=utcnow(), **{name: 1}
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["community_id"],
        set_={name: table.c[name] + 1, "updated_at": stmt.excluded.updated_at},
    )
    await session.execute(stmt)


async def get_counts(*, session: AsyncSession, community_id: uuid.UUID) -> CommunityCountsPublic:
    """A community's counters; zeros (and no updated_at) when nothing was counted yet."""
    row = await session.get(CommunityCounts, community_id)
    if row is None:
        # Metrics learns communities only from their facts, so "unknown" and "nothing happened
        # yet" look the same here; zeros are the true answer to both.
        return CommunityCountsPublic(community_id=community_id)
    return CommunityCountsPublic.model_validate(row, from_attributes=True)
