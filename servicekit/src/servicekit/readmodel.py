"""Read models fed by versioned snapshots: a snapshot is applied only when it is newer.

A producer that publishes the whole state of an entity with a version that only grows lets a
consumer keep a local copy that is right whatever the delivery order: redeliveries, reordering
and several replicas sharing a durable consumer all end at the newest version. The whole
decision is one statement (`INSERT ... ON CONFLICT (key) DO UPDATE ... WHERE version <
excluded.version`), so two replicas racing on the same row cannot both win, and nothing is read
first. PostgreSQL and SQLite (3.24+) both support it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlmodel.ext.asyncio.session import AsyncSession

from servicekit.db import affected_rows, upsert_insert


def table_of(model: Any) -> Table:
    """The Core table behind a table model (or the table itself)."""
    return model if isinstance(model, Table) else model.__table__


async def apply_snapshot(
    session: AsyncSession,
    model: Any,
    values: Mapping[str, Any],
    *,
    key: Sequence[str],
    version: str = "version",
) -> bool:
    """Upsert `values` unless the row already holds this version or a newer one; True if applied.

    `values` is the whole row as of the snapshot (key columns and `version` included): every
    other column is overwritten, so the row never mixes two versions.
    """
    table = table_of(model)
    if version not in values:
        raise ValueError(f"a snapshot of {table.name} carries no {version!r}")
    stmt = upsert_insert(session, table).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c[name] for name in key],
        set_={name: stmt.excluded[name] for name in values if name not in key},
        where=table.c[version] < stmt.excluded[version],
    )
    return affected_rows(await session.execute(stmt)) == 1
