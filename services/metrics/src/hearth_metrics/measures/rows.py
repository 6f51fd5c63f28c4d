"""One-statement upserts of fact rows whose columns only move one way (order-independent)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import case, func, or_
from sqlmodel.ext.asyncio.session import AsyncSession

from servicekit.db import upsert_insert


def _sooner(table: Any, ex: Any, col: str) -> Any:
    return or_(table.c[col].is_(None), table.c[col] > ex[col])


def _later(table: Any, ex: Any, col: str) -> Any:
    return or_(table.c[col].is_(None), table.c[col] <= ex[col])


async def upsert_fact(
    session: AsyncSession,
    model: Any,
    *,
    key: Mapping[str, Any],
    earliest: Mapping[str, Any] | None = None,
    latest: Mapping[str, Any] | None = None,
    add: Mapping[str, int] | None = None,
    fill: Mapping[str, Any] | None = None,
    follows: Mapping[str, tuple[str, Any]] | None = None,
) -> None:
    """Insert the row, or merge into it: `earliest` columns keep the minimum, `latest` the
    maximum, `add` columns are summed, `fill` columns take the new value unless it is null, and
    each `follows` column (name -> (time column, value)) moves together with its time column.

    One `INSERT ... ON CONFLICT DO UPDATE`, so replicas and redeliveries in any order agree (the
    SET expressions read the row as it was, on PostgreSQL and SQLite alike).
    """
    table = model.__table__
    earliest, latest, add = earliest or {}, latest or {}, add or {}
    fill, follows = fill or {}, follows or {}
    values = {
        **key,
        **earliest,
        **latest,
        **add,
        **fill,
        **{col: value for col, (_, value) in follows.items()},
    }
    stmt = upsert_insert(session, table).values(**values)
    ex = stmt.excluded
    set_: dict[str, Any] = {}
    for col in earliest:
        set_[col] = case((_sooner(table, ex, col), ex[col]), else_=table.c[col])
    for col in latest:
        set_[col] = case((_later(table, ex, col), ex[col]), else_=table.c[col])
    for col in add:
        set_[col] = table.c[col] + ex[col]
    for col in fill:
        set_[col] = func.coalesce(ex[col], table.c[col])
    for col, (time_col, _) in follows.items():
        moved = (
            _sooner(table, ex, time_col) if time_col in earliest else _later(table, ex, time_col)
        )
        set_[col] = case((moved, ex[col]), else_=table.c[col])
    if set_:
        stmt = stmt.on_conflict_do_update(index_elements=list(key), set_=set_)
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(key))
    await session.execute(stmt)
