"""Rebuild: recompute every activity table from the streams, then swap, without stopping reads.

1. Shadow copies of the tables in `REBUILT` (`<name>__rebuild`) are created empty.
2. Every producing stream is replayed from its first message up to its last one at the start,
   through the same `apply_facts` as incremental ingest, into the shadows. Only events the live
   ingest has taken (their inbox row exists) are applied; the others are kept aside. Reads and
   ingest go on against the live tables meanwhile.
3. One short transaction takes the ingest lock alone (PostgreSQL: the advisory lock each ingest
   transaction shares; SQLite has a single writer anyway), so no ingest batch is in flight and
   the inbox is still: it applies the messages that arrived since step 2 and the ones kept
   aside, again only those in the inbox, then renames the shadows over the live tables. Readers
   wait for the renames (milliseconds) instead of failing; ingest resumes on the new tables,
   and every event is then counted exactly once: in the rebuild if its inbox row existed at the
   swap, by the ingest otherwise.

So a rebuild equals incremental ingest over the same events (a test compares them). It covers
what the streams still hold: a stream's `max_age` bounds how far back a rebuild can reach.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import nats.errors
import sqlalchemy as sa
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy import MetaData, Table
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_metrics.activity.consumers import INGEST_LOCK, activity
from hearth_metrics.activity.facts import CONTEXTS, fact_of
from hearth_metrics.activity.ingest import Tables, apply_facts
from hearth_metrics.activity.models import REBUILT
from servicekit.db import Database
from servicekit.events import Envelope, stream_name
from servicekit.tables import KitTables

log = logging.getLogger(__name__)
SUFFIX = "__rebuild"


@dataclass
class RebuildResult:
    """What a rebuild replayed and applied."""

    read: int = 0
    applied: int = 0
    swapped: bool = False


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


async def _read(
    js: JetStreamContext, stream: str, *, after: int, until: int, batch: int = 5000
) -> Any:
    """Yield lists of (sequence, envelope) for the stream's messages after..until."""
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
                messages = await sub.fetch(batch, timeout=1.0)
            except (nats.errors.TimeoutError, TimeoutError) as exc:
                # A slow server is not the end of the stream: never skip what it still holds.
                idle += 1
                if idle >= 30:
                    raise RuntimeError(f"{stream}: nothing past {seq} (expected {until})") from exc
                continue
            idle = 0
            out = []
            for message in messages:
                seq = message.metadata.sequence.stream
                if seq > until:
                    break
                try:
                    out.append((seq, Envelope.from_message(message.headers, message.data)))
                except ValueError:
                    continue
            if out:
                yield out
            if messages and messages[-1].metadata.sequence.stream >= until:
                break
    finally:
        await sub.unsubscribe()


async def _in_inbox(session: AsyncSession, kit: KitTables, ids: list[Any]) -> set[Any]:
    inbox = kit.inbox
    found: set[Any] = set()
    for i in range(0, len(ids), 1000):
        rows = await session.execute(
            sa.select(inbox.c.event_id).where(
                inbox.c.consumer == activity.name, inbox.c.event_id.in_(ids[i : i + 1000])
            )
        )
        found.update(rows.scalars())
    return found


async def _apply(
    session: AsyncSession,
    kit: KitTables,
    envelopes: list[Envelope],
    shadow: Tables,
    aside: dict[Any, Envelope],
    seen: set[int],
    *,
    default_zone: str,
) -> int:
    # A second copy of an event in a stream (republished past the duplicate window) is the
    # same event: the inbox counted it once, and so does the replay.
    wanted = {
        e.id: e
        for e in envelopes
        if activity.handler_for(e.type) is not None and e.id.int not in seen
    }
    if not wanted:
        return 0
    taken = await _in_inbox(session, kit, list(wanted))
    for event_id, envelope in wanted.items():
        if event_id not in taken:
            aside[event_id] = envelope
    seen.update(i.int for i in taken)
    facts = [f for i, e in wanted.items() if i in taken for f in [fact_of(e)] if f is not None]
    await apply_facts(session, facts, tables=shadow, default_zone=default_zone)
    return len(taken)


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
    ends: dict[str, int] = {}
    aside: dict[Any, Envelope] = {}
    seen: set[int] = set()
    for context in CONTEXTS:
        stream = stream_name(prefix, context)
        ends[stream] = await _stream_end(js, stream)
        async for chunk in _read(js, stream, after=0, until=ends[stream]):
            async with db.session() as session:
                envelopes = [e for _, e in chunk]
                result.read += len(envelopes)
                result.applied += await _apply(
                    session, kit, envelopes, shadow, aside, seen, default_zone=default_zone
                )
                await session.commit()
    async with db.session() as session:
        if postgres:
            await session.execute(sa.select(sa.func.pg_advisory_xact_lock(INGEST_LOCK)))
        late: list[Envelope] = list(aside.values())
        aside = {}
        for stream, start in ends.items():
            async for chunk in _read(js, stream, after=start, until=await _stream_end(js, stream)):
                late.extend(e for _, e in chunk)
                result.read += len(chunk)
        result.applied += await _apply(
            session, kit, late, shadow, aside, seen, default_zone=default_zone
        )
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
