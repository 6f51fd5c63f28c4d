"""A rebuild's replay: a whole stream's facts aggregated in memory, then written in bulk.

The shadow tables of a rebuild start empty and nothing else writes them until the swap, so
there is nothing to read back, lock or merge row by row as incremental ingest must: the replay
adds every fact to in-memory rows (counts per member-day and community-day, one roaring
bitmap per community-day, one state per community member, care journeys), the same rules as
`ingest.apply_facts` (counts add, bitmaps union, first join a minimum, last activity a
maximum, a care journey's first report of each step wins), and writes each row once: `COPY`
on PostgreSQL, one executemany elsewhere. Member-day rows are the only ones that grow with
the events rather than with members or days; past `SPILL` of them they are flushed with the
ingest's additive upsert, which keeps memory bounded on any stream.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pyroaring import BitMap
from sqlalchemy import Table
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_metrics.activity.facts import Fact
from hearth_metrics.activity.ingest import Tables, bulk_upsert, member_numbers
from hearth_metrics.activity.models import KINDS
from hearth_metrics.communities.models import CommunityPolicy

SPILL = 500_000  # member-day rows held before a flush (~150 MB)
WRITE_CHUNK = 20_000  # rows per statement when flushing
_KIND = {k: i for i, k in enumerate(KINDS)}
MEMBER_COLUMNS = [
    *("community_id", "member", "user_id", "joined_at", "channel"),
    *("last_active_at", "contributions"),
]


async def all_zones(session: AsyncSession) -> dict[uuid.UUID, ZoneInfo]:
    """Every community policy's time zone (one read: a replay touches every community)."""
    table = CommunityPolicy.__table__  # type: ignore[attr-defined]
    rows = await session.execute(sa.select(table.c.community_id, table.c.time_zone))
    return {cid: ZoneInfo(tz) for cid, tz in rows.all() if tz}


class Replay:
    """The facts of a replay, aggregated in memory (see the module)."""

    def __init__(self, tables: Tables, zones: dict[uuid.UUID, ZoneInfo], default_zone: str) -> None:
        self.tables = tables
        self.zones = zones
        self.default = ZoneInfo(default_zone)
        self.numbers: dict[uuid.UUID, int] = {}
        self.member_days: dict[tuple[uuid.UUID, date, int], list[int]] = {}
        self.spilled = False
        self.day_counts: dict[tuple[uuid.UUID, date], list[int]] = {}
        self.day_members: dict[tuple[uuid.UUID, date], BitMap] = {}
        # (community, member) -> [user_id, joined_at, channel, last_active_at, contributions]
        self.members: dict[tuple[uuid.UUID, int], list[Any]] = {}
        self.care: dict[uuid.UUID, dict[str, Any]] = {}

    def _zone(self, community: uuid.UUID) -> ZoneInfo:
        zone = self.zones.get(community)
        if zone is None:
            zone = self.zones[community] = self.default
        return zone

    async def add(self, session: AsyncSession, facts: Sequence[Fact]) -> None:
        """Aggregate facts (numbers of new members allocated as the ingest does)."""
        numbers = self.numbers
        new = {f.user_id for f in facts if f.kind in ("activity", "joined")} - numbers.keys()
        if new:
            numbers.update(await member_numbers(session, new))
        n_kinds = len(KINDS)
        for f in facts:
            kind = f.kind
            if kind in ("care_started", "won_back"):
                self._care(f)
                continue
            c = f.community_id
            n = numbers[f.user_id]
            state = self.members.get((c, n))
            if state is None:
                state = self.members[(c, n)] = [f.user_id, None, None, None, 0]
            if kind == "joined":
                if state[1] is None or f.at < state[1]:
                    state[1], state[2] = f.at, f.what
                continue
            day = f.at.astimezone(self._zone(c)).date()
            i = _KIND[f.what]
            row = self.member_days.get((c, day, n))
            if row is None:
                row = self.member_days[(c, day, n)] = [0] * n_kinds
            row[i] += 1
            key = (c, day)
            counts = self.day_counts.get(key)
            if counts is None:
                counts = self.day_counts[key] = [0] * n_kinds
                self.day_members[key] = BitMap()
            counts[i] += 1
            self.day_members[key].add(n)
            state[4] += 1
            if state[3] is None or f.at > state[3]:
                state[3] = f.at
        if len(self.member_days) >= SPILL:
            await self._flush_member_days(session)

    def _care(self, f: Fact) -> None:
        if f.journey_id is None:
            return
        row = self.care.get(f.journey_id)
        if row is None:
            row = self.care[f.journey_id] = {
                "journey_id": f.journey_id,
                "community_id": f.community_id,
                "user_id": f.user_id,
                "trigger": f.what,
                "started_at": None,
                "won_back_at": None,
            }
        column = "started_at" if f.kind == "care_started" else "won_back_at"
        if row[column] is None:
            row[column] = f.at

    async def _flush_member_days(self, session: AsyncSession) -> None:
        """Upsert the member-day rows held so far (additive: later flushes add to them)."""
        rows = [
            {"community_id": c, "day": d, "member": n, **dict(zip(KINDS, v, strict=True))}
            for (c, d, n), v in sorted(self.member_days.items())
        ]
        self.member_days = {}
        self.spilled = True
        for i in range(0, len(rows), WRITE_CHUNK):
            await bulk_upsert(
                session,
                self.tables.member_days,
                rows[i : i + WRITE_CHUNK],
                key=["community_id", "day", "member"],
                update={k: f"{{t}}.{k} + EXCLUDED.{k}" for k in KINDS},
            )

    async def write(self, session: AsyncSession) -> None:
        """Write the aggregated rows into the (empty) shadow tables, in the caller's
        transaction."""
        tables = self.tables
        if self.spilled:
            await self._flush_member_days(session)
        else:
            await copy_rows(
                session,
                tables.member_days,
                ["community_id", "day", "member", *KINDS],
                [(c, d, n, *v) for (c, d, n), v in self.member_days.items()],
            )
            self.member_days = {}
        await copy_rows(
            session,
            tables.days,
            ["community_id", "day", *KINDS, "active", "members"],
            [
                (c, d, *v, len(bm := self.day_members[(c, d)]), bm.serialize())
                for (c, d), v in self.day_counts.items()
            ],
        )
        await copy_rows(
            session,
            tables.members,
            MEMBER_COLUMNS,
            [(c, n, *state) for (c, n), state in self.members.items()],
        )
        cohorts: dict[tuple[uuid.UUID, date, str], BitMap] = {}
        for (c, n), state in self.members.items():
            if state[1] is not None:
                key = (c, state[1].astimezone(self._zone(c)).date(), state[2])
                cohorts.setdefault(key, BitMap()).add(n)
        await copy_rows(
            session,
            tables.cohorts,
            ["community_id", "day", "channel", "size", "members"],
            [(c, d, ch, len(bm), bm.serialize()) for (c, d, ch), bm in cohorts.items()],
        )
        columns = ["journey_id", "community_id", "user_id", "trigger", "started_at"]
        columns.append("won_back_at")
        await copy_rows(
            session,
            tables.care,
            columns,
            [tuple(row[k] for k in columns) for row in self.care.values()],
        )


async def copy_rows(
    session: AsyncSession, table: Table, columns: list[str], records: list[tuple[Any, ...]]
) -> None:
    """Insert rows into an empty table: PostgreSQL's binary COPY, else one executemany."""
    if not records:
        return
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        conn = await session.connection()
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        await driver.copy_records_to_table(table.name, records=records, columns=columns)
        return
    for i in range(0, len(records), WRITE_CHUNK):
        await session.execute(
            table.insert(),
            [dict(zip(columns, r, strict=True)) for r in records[i : i + WRITE_CHUNK]],
        )
