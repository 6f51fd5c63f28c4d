"""Applying a batch of facts to the activity tables, in the caller's transaction.

Every change is commutative (counts add, sets union, first join is a minimum, last activity a
maximum), so the tables end the same whatever order events arrive in, whichever replica applies
them and however they are batched; that is also why a rebuild (a replay in stream order) equals
incremental ingest. Rows are written in key order (ensure, lock with FOR UPDATE in key order,
update), so two replicas' batches wait on each other instead of deadlocking or losing updates.
The same functions write the live tables and a rebuild's shadow copies (`Tables`).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pyroaring import BitMap
from sqlalchemy import Table
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_metrics.activity.facts import Fact
from hearth_metrics.activity.models import (
    KINDS,
    CareJourney,
    Cohort,
    CommunityDay,
    MemberDay,
    MemberKey,
    MemberState,
)
from hearth_metrics.communities.models import CommunityPolicy
from servicekit.db import upsert_insert

EMPTY = BitMap().serialize()


@dataclass(frozen=True)
class Tables:
    """The tables a batch is written to: the live ones, or a rebuild's shadow copies."""

    member_days: Table
    days: Table
    cohorts: Table
    members: Table
    care: Table

    @classmethod
    def live(cls) -> Tables:
        """The live tables."""
        return cls(
            *(_table(m) for m in (MemberDay, CommunityDay, Cohort, MemberState, CareJourney))
        )


def _table(model: Any) -> Table:
    return model.__table__  # type: ignore[no-any-return]


def _postgres(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"


def _pg_type(column: Any) -> str:
    name = type(column.type).__name__.upper()
    if name in ("UUID", "UUIDTYPE") or name.endswith("UUID"):
        return "uuid"
    if name in ("LARGEBINARY", "BLOB"):
        return "bytea"
    if "DATETIME" in name or "UTCDATETIME" in name:
        return "timestamptz"
    if name == "DATE":
        return "date"
    if "INT" in name:
        return "int8" if "BIG" in name else "int4"
    return "text"


async def bulk_upsert(
    session: AsyncSession,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    key: Sequence[str],
    update: dict[str, str] | None = None,
    returning: str | None = None,
) -> list[Any]:
    """Insert rows, on a key conflict do nothing or apply `update` ({column: SQL over the row's
    table name and EXCLUDED}); returns the `returning` column of the rows inserted or updated.

    PostgreSQL: one statement, `INSERT ... SELECT * FROM unnest(<one array per column>)`, the
    same SQL for any number of rows (prepared once, one round trip). SQLite: an executemany.
    """
    if not rows:
        return []
    columns = list(rows[0])
    if _postgres(session):
        name = f'"{table.name}"'
        arrays = ", ".join(
            f"CAST(:c{i} AS {_pg_type(table.c[c])}[])" for i, c in enumerate(columns)
        )
        conflict = f"ON CONFLICT ({', '.join(key)}) DO " + (
            "UPDATE SET " + ", ".join(f"{c} = {expr.format(t=name)}" for c, expr in update.items())
            if update
            else "NOTHING"
        )
        # Identifiers come from this service's own table metadata; every value is bound.
        head = f"INSERT INTO {name} ({', '.join(columns)}) SELECT * FROM unnest({arrays}) "  # noqa: S608
        sql = head + conflict + (f" RETURNING {returning}" if returning else "")
        params = {f"c{i}": [r[c] for r in rows] for i, c in enumerate(columns)}
        result = await session.execute(sa.text(sql), params)
        return list(result.scalars()) if returning else []
    stmt = upsert_insert(session, table)
    if update:
        stmt = stmt.on_conflict_do_update(
            index_elements=list(key),
            set_={
                c: sa.literal_column(
                    expr.format(t=f'"{table.name}"').replace("EXCLUDED", "excluded")
                )
                for c, expr in update.items()
            },
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(key))
    if returning:
        result = await session.execute(stmt.returning(table.c[returning]), list(rows))
        return list(result.scalars())
    await session.execute(stmt, list(rows))
    return []


async def zones_of(
    session: AsyncSession, community_ids: Iterable[uuid.UUID], *, default: str
) -> dict[uuid.UUID, ZoneInfo]:
    """Each community's time zone (its policy's, else the default)."""
    ids = sorted(set(community_ids))
    table = _table(CommunityPolicy)
    rows = (
        await session.execute(
            sa.select(table.c.community_id, table.c.time_zone).where(table.c.community_id.in_(ids))
        )
    ).all()
    found = {cid: tz for cid, tz in rows if tz}
    return {cid: _zone(found.get(cid, default)) for cid in ids}


_ZONES: dict[str, ZoneInfo] = {}


def _zone(name: str) -> ZoneInfo:
    zone = _ZONES.get(name)
    if zone is None:
        zone = _ZONES[name] = ZoneInfo(name)
    return zone


async def member_numbers(session: AsyncSession, users: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
    """The dense bitmap number of each user id, allocating numbers for new ones."""
    wanted = sorted(set(users))
    if not wanted:
        return {}
    table = _table(MemberKey)
    found: dict[uuid.UUID, int] = {}
    for chunk in _chunks(wanted, 1000):
        rows = await session.execute(
            sa.select(table.c.user_id, table.c.n).where(table.c.user_id.in_(chunk))
        )
        found.update({u: n for u, n in rows.all()})
    missing = [u for u in wanted if u not in found]
    if missing:
        await bulk_upsert(session, table, [{"user_id": u} for u in missing], key=["user_id"])
        for chunk in _chunks(missing, 1000):
            rows = await session.execute(
                sa.select(table.c.user_id, table.c.n).where(table.c.user_id.in_(chunk))
            )
            found.update({u: n for u, n in rows.all()})
    return found


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


async def _lock(
    session: AsyncSession, table: Table, keys: Sequence[str], wanted: Sequence[tuple[Any, ...]]
) -> dict[tuple[Any, ...], Any]:
    """The rows with these keys, locked FOR UPDATE in key order (PostgreSQL; SQLite has one
    writer), keyed by their key tuple."""
    cols = [table.c[k] for k in keys]
    out: dict[tuple[Any, ...], Any] = {}
    for chunk in _chunks(sorted(wanted), 500):
        stmt = sa.select(table).where(sa.tuple_(*cols).in_(list(chunk))).order_by(*cols)
        for row in (await session.execute(stmt.with_for_update())).all():
            out[tuple(getattr(row, k) for k in keys)] = row
    return out


async def apply_facts(
    session: AsyncSession, facts: Sequence[Fact], *, tables: Tables, default_zone: str
) -> dict[tuple[uuid.UUID, int], datetime]:
    """Apply facts to the tables; returns each (community, member)'s earliest activity here."""
    if not facts:
        return {}
    zones = await zones_of(session, (f.community_id for f in facts), default=default_zone)
    numbers = await member_numbers(
        session, (f.user_id for f in facts if f.kind in ("activity", "joined"))
    )

    def local(f: Fact) -> date:
        return f.at.astimezone(zones[f.community_id]).date()

    member_days: dict[tuple[uuid.UUID, date, int], dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(KINDS, 0)
    )
    day_counts: dict[tuple[uuid.UUID, date], dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(KINDS, 0)
    )
    day_members: dict[tuple[uuid.UUID, date], set[int]] = defaultdict(set)
    last_active: dict[tuple[uuid.UUID, int], datetime] = {}
    first_active: dict[tuple[uuid.UUID, int], datetime] = {}
    contributions: dict[tuple[uuid.UUID, int], int] = defaultdict(int)
    joins: dict[tuple[uuid.UUID, int], Fact] = {}
    users: dict[tuple[uuid.UUID, int], uuid.UUID] = {}
    care: list[Fact] = []
    for f in facts:
        if f.kind in ("care_started", "won_back"):
            care.append(f)
            continue
        n = numbers[f.user_id]
        pair = (f.community_id, n)
        users[pair] = f.user_id
        if f.kind == "joined":
            if pair not in joins or f.at < joins[pair].at:
                joins[pair] = f
            continue
        day = local(f)
        member_days[(f.community_id, day, n)][f.what] += 1
        day_counts[(f.community_id, day)][f.what] += 1
        day_members[(f.community_id, day)].add(n)
        contributions[pair] += 1
        if pair not in last_active or f.at > last_active[pair]:
            last_active[pair] = f.at
        if pair not in first_active or f.at < first_active[pair]:
            first_active[pair] = f.at

    await _member_days(session, tables.member_days, member_days)
    await _days(session, tables.days, day_counts, day_members)
    cohort_moves = await _members(session, tables.members, users, last_active, contributions, joins)
    await _cohorts(session, tables.cohorts, cohort_moves, zones)
    await _care(session, tables.care, care)
    return first_active


async def _member_days(
    session: AsyncSession, table: Table, rows: dict[tuple[uuid.UUID, date, int], dict[str, int]]
) -> None:
    if not rows:
        return
    values = [
        {"community_id": c, "day": d, "member": n, **counts}
        for (c, d, n), counts in sorted(rows.items())
    ]
    await bulk_upsert(
        session,
        table,
        values,
        key=["community_id", "day", "member"],
        update={k: f"{{t}}.{k} + EXCLUDED.{k}" for k in KINDS},
    )


async def _days(
    session: AsyncSession,
    table: Table,
    counts: dict[tuple[uuid.UUID, date], dict[str, int]],
    members: dict[tuple[uuid.UUID, date], set[int]],
) -> None:
    if not counts:
        return
    keys = sorted(counts)
    await bulk_upsert(
        session,
        table,
        [{"community_id": c, "day": d, "members": EMPTY} for c, d in keys],
        key=["community_id", "day"],
    )
    held = await _lock(session, table, ["community_id", "day"], keys)
    updates = []
    for key in keys:
        row = held[key]
        bitmap = BitMap.deserialize(row.members)
        before = len(bitmap)
        bitmap |= BitMap(members[key])
        delta = counts[key]
        update: dict[str, Any] = {"k_c": key[0], "k_d": key[1]}
        update.update({k: getattr(row, k) + delta[k] for k in KINDS})
        update["active"] = len(bitmap)
        update["members"] = bitmap.serialize() if len(bitmap) != before else row.members
        updates.append(update)
    stmt2 = (
        table.update()
        .where(table.c.community_id == sa.bindparam("k_c"), table.c.day == sa.bindparam("k_d"))
        .values({k: sa.bindparam(k) for k in (*KINDS, "active", "members")})
    )
    await session.execute(stmt2, updates)


async def _members(
    session: AsyncSession,
    table: Table,
    users: dict[tuple[uuid.UUID, int], uuid.UUID],
    last_active: dict[tuple[uuid.UUID, int], datetime],
    contributions: dict[tuple[uuid.UUID, int], int],
    joins: dict[tuple[uuid.UUID, int], Fact],
) -> list[tuple[uuid.UUID, int, Fact | None, datetime | None, str | None]]:
    """Upsert member states; returns cohort moves (community, member, join, old at, old channel)."""
    if not users:
        return []
    keys = sorted(users)
    values = [
        {
            "community_id": c,
            "member": n,
            "user_id": users[(c, n)],
            "last_active_at": last_active.get((c, n)),
            "contributions": contributions.get((c, n), 0),
        }
        for c, n in keys
    ]
    moves: list[tuple[uuid.UUID, int, Fact | None, datetime | None, str | None]] = []
    if joins:
        # First joins need the old value (a cohort moves when an earlier join arrives late).
        join_keys = sorted(joins)
        await bulk_upsert(
            session,
            table,
            [{"community_id": c, "member": n, "user_id": users[(c, n)]} for c, n in join_keys],
            key=["community_id", "member"],
        )
        held = await _lock(session, table, ["community_id", "member"], join_keys)
        changed = []
        for key in join_keys:
            row, fact = held[key], joins[key]
            if row.joined_at is None or fact.at < row.joined_at:
                moves.append((key[0], key[1], fact, row.joined_at, row.channel))
                changed.append({"k_c": key[0], "k_m": key[1], "j": fact.at, "ch": fact.what})
        if changed:
            await session.execute(
                table.update()
                .where(
                    table.c.community_id == sa.bindparam("k_c"),
                    table.c.member == sa.bindparam("k_m"),
                )
                .values(joined_at=sa.bindparam("j"), channel=sa.bindparam("ch")),
                changed,
            )
    active = [v for v in values if v["last_active_at"] is not None]
    later = (
        "GREATEST({t}.last_active_at, EXCLUDED.last_active_at)"
        if _postgres(session)
        else "max(coalesce({t}.last_active_at, EXCLUDED.last_active_at),"
        " coalesce(EXCLUDED.last_active_at, {t}.last_active_at))"
    )
    await bulk_upsert(
        session,
        table,
        active,
        key=["community_id", "member"],
        update={
            "last_active_at": later,
            "contributions": "{t}.contributions + EXCLUDED.contributions",
        },
    )
    return moves


async def _cohorts(
    session: AsyncSession,
    table: Table,
    moves: list[tuple[uuid.UUID, int, Fact | None, datetime | None, str | None]],
    zones: dict[uuid.UUID, ZoneInfo],
) -> None:
    if not moves:
        return
    add: dict[tuple[uuid.UUID, date, str], set[int]] = defaultdict(set)
    remove: dict[tuple[uuid.UUID, date, str], set[int]] = defaultdict(set)
    for community, n, fact, old_at, old_channel in moves:
        zone = zones[community]
        if old_at is not None:
            remove[(community, old_at.astimezone(zone).date(), old_channel or "")].add(n)
        if fact is not None:
            add[(community, fact.at.astimezone(zone).date(), fact.what)].add(n)
    keys = sorted(set(add) | set(remove))
    await bulk_upsert(
        session,
        table,
        [{"community_id": c, "day": d, "channel": ch, "members": EMPTY} for c, d, ch in keys],
        key=["community_id", "day", "channel"],
    )
    held = await _lock(session, table, ["community_id", "day", "channel"], keys)
    updates = []
    for key in keys:
        bitmap = BitMap.deserialize(held[key].members)
        bitmap |= BitMap(add.get(key, ()))
        bitmap -= BitMap(remove.get(key, ()))
        updates.append(
            {
                "k_c": key[0],
                "k_d": key[1],
                "k_ch": key[2],
                "members": bitmap.serialize(),
                "size": len(bitmap),
            }
        )
    await session.execute(
        table.update()
        .where(
            table.c.community_id == sa.bindparam("k_c"),
            table.c.day == sa.bindparam("k_d"),
            table.c.channel == sa.bindparam("k_ch"),
        )
        .values(members=sa.bindparam("members"), size=sa.bindparam("size")),
        updates,
    )


async def _care(session: AsyncSession, table: Table, facts: list[Fact]) -> None:
    for f in sorted(facts, key=lambda f: (str(f.journey_id), f.kind)):
        if f.journey_id is None:
            continue
        base = {
            "journey_id": f.journey_id,
            "community_id": f.community_id,
            "user_id": f.user_id,
            "trigger": f.what,
        }
        column = "started_at" if f.kind == "care_started" else "won_back_at"
        stmt = upsert_insert(session, table).values(**base, **{column: f.at})
        stmt = stmt.on_conflict_do_update(
            index_elements=["journey_id"],
            set_={column: sa.func.coalesce(table.c[column], stmt.excluded[column])},
        )
        await session.execute(stmt)
