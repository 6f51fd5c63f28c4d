"""Rebuild: recompute every activity table from the streams, then swap, without stopping reads.

1. Shadow copies of the tables in `REBUILT` (`<name>__rebuild`) are created empty.
2. Every producing stream is replayed from its first message up to its last one at the start,
   with the same facts (`facts.fact_from`) and rules as incremental ingest, aggregated in memory
   (activity/replay.py) and written into the shadows in bulk (COPY on PostgreSQL). Only events
   the live ingest has taken (their inbox row exists) are applied; the others are kept aside.
   Reads and ingest go on against the live tables meanwhile.
3. One short transaction takes the ingest lock alone (PostgreSQL: the advisory lock each ingest
   transaction shares; SQLite has a single writer anyway), so no ingest batch is in flight and
   the inbox is still: it applies the messages that arrived since step 2 and the ones kept
   aside, again only those in the inbox (through `apply_facts`, which merges into the rows
   already there), then renames the shadows over the live tables. Readers
   wait for the renames (milliseconds) instead of failing; ingest resumes on the new tables,
   and every event is then counted exactly once: in the rebuild if its inbox row existed at the
   swap, by the ingest otherwise.

So a rebuild equals incremental ingest over the same events (a test compares them). It covers
what the streams still hold: a stream's `max_age` bounds how far back a rebuild can reach.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import nats.errors
import orjson
import sqlalchemy as sa
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy import MetaData, Table
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_metrics.activity.consumers import INGEST_LOCK, activity
from hearth_metrics.activity.facts import CONTEXTS, FACT_TYPES, Fact, fact_from
from hearth_metrics.activity.ingest import Tables, apply_facts
from hearth_metrics.activity.models import REBUILT
from hearth_metrics.activity.replay import Replay, all_zones
from servicekit.db import Database
from servicekit.events import stream_name
from servicekit.tables import KitTables

log = logging.getLogger(__name__)
SUFFIX = "__rebuild"
CHUNK = 20_000  # events per inbox check (one `= ANY(array)` query on PostgreSQL)
FETCH = 10_000  # messages per pull request of the replay's ephemeral consumer


@dataclass
class RebuildResult:
    """What a rebuild replayed and applied."""

    read: int = 0
    applied: int = 0
    swapped: bool = False


Item = tuple[uuid.UUID, Fact]
"""An event id and the fact it carries."""


def shadow_tables() -> tuple[list[Table], Tables]:
    """Empty-named shadow copies of the rebuilt tables (same columns and keys, no indexes)."""
    meta = MetaData()
    shadows = []
    for model in REBUILT:
        live: Table = model.__table__  # type: ignore[union-attr]
        copy = Table(live.name + SUFFIX, meta, *(c._copy() for c in live.columns))
        shadows.append(copy)
    return shadows, Tables(*shadows)


async def _stream_end(js: JetStreamContext, stream: str) -> int:
    try:
        return int((await js.stream_info(stream)).state.last_seq)
    except nats.js.errors.NotFoundError:
        return 0


async def _read(js: JetStreamContext, stream: str, *, after: int, until: int) -> Any:
    """Yield lists of (event id, fact) for the stream's messages after..until."""
    if until <= after:
        return
    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=after + 1,
        ack_policy=AckPolicy.NONE,
        inactive_threshold=60.0,
    )
    sub = await js.pull_subscribe("", stream=stream, config=config)
    try:
        seq = after
        idle = 0
        while seq < until:
            try:
                # Ask for no more than is left, so the last pull ends at once.
                messages = await sub.fetch(min(FETCH, until - seq), timeout=1.0)
            except (nats.errors.TimeoutError, TimeoutError) as exc:
                # A slow server is not the end of the stream: never skip what it still holds.
                idle += 1
                if idle >= 30:
                    raise RuntimeError(f"{stream}: nothing past {seq} (expected {until})") from exc
                continue
            idle = 0
            if not messages:
                continue
            # Delivery is in stream order: only the last message's sequence is needed, unless
            # the batch runs past the end (messages published since the replay began).
            last = messages[-1].metadata.sequence.stream
            if last > until:
                messages = [m for m in messages if m.metadata.sequence.stream <= until]
            seq = last
            out = [item for m in messages if (item := _item(m)) is not None]
            if out:
                yield out
    finally:
        await sub.unsubscribe()


def _item(message: Any) -> Item | None:
    """The event id and fact of a message that carries one, parsed without validation (the
    ingest validated it when it took it); None for every other message."""
    h = message.headers
    if not h or (ce_type := h.get("ce-type")) not in FACT_TYPES:
        return None
    try:
        data = orjson.loads(message.data) if message.data else {}
        if not isinstance(data, dict):
            return None
        fact = fact_from(ce_type, data, datetime.fromisoformat(h["ce-time"]))
        return (uuid.UUID(h["ce-id"]), fact) if fact is not None else None
    except (KeyError, ValueError, orjson.JSONDecodeError):
        return None


async def _in_inbox(session: AsyncSession, kit: KitTables, ids: list[uuid.UUID]) -> set[Any]:
    """The ids among these that the live ingest has taken (its inbox rows)."""
    inbox = kit.inbox
    found: set[Any] = set()
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        # One statement whatever the number of ids (prepared once), not a 1,000-wide IN list.
        rows = await session.execute(
            sa.text(
                f'SELECT event_id FROM "{inbox.name}" '  # noqa: S608 - kit's own table name
                "WHERE consumer = :c AND event_id = ANY(:ids)"
            ),
            {"c": activity.name, "ids": ids},
        )
        found.update(rows.scalars())
        return found
    for i in range(0, len(ids), 500):
        rows = await session.execute(
            sa.select(inbox.c.event_id).where(
                inbox.c.consumer == activity.name, inbox.c.event_id.in_(ids[i : i + 500])
            )
        )
        found.update(rows.scalars())
    return found


async def _taken(
    session: AsyncSession, kit: KitTables, items: list[Item], aside: dict[Any, Fact], seen: set[int]
) -> list[Fact]:
    """The facts of the events the ingest took, once each; the others are put aside."""
    # A second copy of an event in a stream (republished past the duplicate window) is the
    # same event: the inbox counted it once, and so does the replay.
    wanted = {i: f for i, f in items if i.int not in seen}
    if not wanted:
        return []
    taken = await _in_inbox(session, kit, list(wanted))
    facts = []
    for event_id, fact in wanted.items():
        if event_id in taken:
            seen.add(event_id.int)
            facts.append(fact)
        else:
            aside[event_id] = fact
    return facts


async def rebuild(
    db: Database, kit: KitTables, js: JetStreamContext, *, prefix: str, default_zone: str
) -> RebuildResult:
    """Recompute the activity tables from the streams and swap them in (see the module)."""
    result = RebuildResult()
    shadows, shadow = shadow_tables()
    postgres = not db.is_sqlite
    async with db.engine.begin() as conn:
        for table in shadows:
            await conn.execute(sa.text(f'DROP TABLE IF EXISTS "{table.name}"'))
            await conn.run_sync(table.create)
    async with db.session() as session:
        replay = Replay(shadow, await all_zones(session), default_zone)
    ends: dict[str, int] = {}
    aside: dict[Any, Fact] = {}
    seen: set[int] = set()

    async def take(items: list[Item]) -> None:
        async with db.session() as session:
            facts = await _taken(session, kit, items, aside, seen)
            await replay.add(session, facts)
            await session.commit()  # new member numbers, and any member-day rows spilled
        result.read += len(items)
        result.applied += len(facts)

    for context in CONTEXTS:
        stream = stream_name(prefix, context)
        ends[stream] = await _stream_end(js, stream)
        pending: list[Item] = []
        async for chunk in _read(js, stream, after=0, until=ends[stream]):
            pending.extend(chunk)
            if len(pending) >= CHUNK:
                await take(pending)
                pending = []
        if pending:
            await take(pending)
    async with db.session() as session:
        await replay.write(session)
        await session.commit()
    async with db.session() as session:
        # Take the lock before reading where the streams end: an ingest commit after that
        # read would otherwise land in the old tables only.
        if postgres:
            await session.execute(sa.select(sa.func.pg_advisory_xact_lock(INGEST_LOCK)))
        else:  # the first statement opens SQLite's write transaction (BEGIN IMMEDIATE)
            await session.execute(sa.text("SELECT 1"))
        late: list[Item] = list(aside.items())
        aside = {}
        for stream, start in ends.items():
            async for chunk in _read(js, stream, after=start, until=await _stream_end(js, stream)):
                late.extend(chunk)
                result.read += len(chunk)
        facts = await _taken(session, kit, late, aside, seen)
        await apply_facts(session, facts, tables=shadow, default_zone=default_zone)
        result.applied += len(facts)
        for model in REBUILT:
            name = model.__table__.name  # type: ignore[union-attr]
            await session.execute(sa.text(f'ALTER TABLE "{name}" RENAME TO "{name}__old"'))
            await session.execute(sa.text(f'ALTER TABLE "{name}{SUFFIX}" RENAME TO "{name}"'))
            await session.execute(sa.text(f'DROP TABLE "{name}__old"'))
            if postgres:
                await session.execute(
                    sa.text(f'ALTER INDEX "{name}{SUFFIX}_pkey" RENAME TO "{name}_pkey"')
                )
        await session.commit()
        result.swapped = True
    log.info("rebuild: %d messages read, %d events applied", result.read, result.applied)
    return result
