"""The `metrics__activity` consumer: every context's stream, applied in batches.

Declared like any consumer (`handles_context` per producing context, one durable per stream,
the kernel's inbox), with one difference: the pull loop hands a whole fetched batch to one
transaction, which inserts the batch's inbox rows (`ON CONFLICT DO NOTHING RETURNING`: the
events not seen before) and applies exactly those to the rollups before one commit. So each
event counts once (a redelivery, a replica racing on the same event, a replayed stream), and
the rollups and the inbox rows exist together or not at all. A batch that fails is retried
message by message through the kernel's own path (its back-off and dead letters), so one
poison event never holds the others back. Several replicas share each durable: JetStream
hands each fetched message to one of them, and rollups only ever add (activity/ingest.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import nats.errors
import sqlalchemy as sa
from nats.aio.msg import Msg
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_metrics.activity.facts import CONTEXTS, fact_of
from hearth_metrics.activity.ingest import Tables, apply_facts, bulk_upsert
from hearth_metrics.inactivity import service as inactivity
from hearth_metrics.settings import MetricsSettings
from servicekit.consumer import ConsumerRuntime, EventConsumer
from servicekit.db import Database
from servicekit.deps import handler_uow
from servicekit.events import Envelope
from servicekit.ids import utcnow
from servicekit.runtime import runtime_of, settings_of
from servicekit.tables import KitTables

log = logging.getLogger(__name__)

INGEST_LOCK = 0x6D657472  # pg advisory lock: ingest shares it, a rebuild's swap takes it alone


async def ingest_events(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
    """Apply new events (inbox rows already written) to the live tables, in this transaction."""
    settings = settings_of(runtime_of(session), MetricsSettings)
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        # A rebuild swapping tables waits for this transaction, and this one for the swap.
        await session.execute(sa.select(sa.func.pg_advisory_xact_lock_shared(INGEST_LOCK)))
    facts = [f for f in (fact_of(e) for e in envelopes) if f is not None]
    first_active = await apply_facts(
        session, facts, tables=Tables.live(), default_zone=settings.default_time_zone
    )
    await inactivity.returned(handler_uow(session), first_active=first_active)


class BatchConsumer(EventConsumer):
    """An EventConsumer whose pull loop applies each fetched batch in one transaction."""

    async def handle_batch(self, db: Database, tables: KitTables, envelopes: list[Envelope]) -> int:
        """Apply the events not seen before, once each, in one transaction; how many were new."""
        unique = {e.id: e for e in envelopes if self.handler_for(e.type) is not None}
        if not unique:
            return 0
        async with db.session() as session:
            now = utcnow()
            rows = [
                {"consumer": self.name, "event_id": i, "event_type": e.type, "handled_at": now}
                for i, e in sorted(unique.items())
            ]
            # The ids inserted now (RETURNING skips conflicts): the events not seen before.
            fresh = set(
                await bulk_upsert(
                    session,
                    tables.inbox,
                    rows,
                    key=["consumer", "event_id"],
                    returning="event_id",
                )
            )
            await ingest_events(session, [e for i, e in unique.items() if i in fresh])
            await session.commit()
        return len(fresh)

    def start(self, **kwargs: Any) -> ConsumerRuntime:
        """Start one batching pull loop per producing stream."""
        max_deliver = self.max_deliver if self.max_deliver is not None else kwargs["max_deliver"]
        ack_wait = self.ack_wait if self.ack_wait is not None else kwargs["ack_wait"]
        runtime = BatchRuntime(
            self,
            kwargs["db"],
            kwargs["tables"],
            kwargs["nats"],
            kwargs["subject_prefix"],
            max_deliver,
            ack_wait,
            kwargs["backoff"],
            kwargs["stream_max_age_days"],
            kwargs["stream_replicas"],
            kwargs.get("drain_seconds", 30.0),
        )
        runtime.start()
        return runtime


class BatchRuntime(ConsumerRuntime):
    """The kernel's consumer loop, with a whole batch per transaction (see the module)."""

    consumer: BatchConsumer

    async def _pull(self, context: str, sub: Any) -> None:
        idle = 0
        busy = False
        while not self.stopping and not self.rebind[context]:
            try:
                if busy:
                    messages = await sub.fetch(self.consumer.batch, timeout=0.05)
                else:
                    messages = await sub.fetch(1, timeout=1.0)
            except (nats.errors.TimeoutError, TimeoutError):
                if busy:
                    busy = False
                    continue
                idle += 1
                if idle % 3 == 0 and not await self._consumer_exists(context):
                    return
                continue
            except Exception as exc:
                log.warning("consumer %s fetch failed on %s: %s", self.consumer.name, context, exc)
                await asyncio.sleep(0.5)
                return
            idle = 0
            busy = True
            task = asyncio.current_task()
            assert task is not None
            self._busy.add(task)
            unsettled = list(messages)
            heartbeat = asyncio.create_task(self._heartbeat(unsettled))
            try:
                if self.stopping:
                    for rest in messages:
                        await rest.nak()
                    return
                try:
                    await self._process_batch(messages)
                    unsettled.clear()
                except Exception:
                    await self._hand_back(messages)
                    raise
            finally:
                heartbeat.cancel()
                self._busy.discard(task)

    async def _process_batch(self, messages: list[Msg]) -> None:
        batch: list[tuple[Msg, Envelope]] = []
        for message in messages:
            try:
                envelope = Envelope.from_message(message.headers, message.data)
            except ValueError:
                await self._process(message)  # the kernel dead-letters what does not parse
                continue
            if self.consumer.handler_for(envelope.type) is None:
                await message.ack()
                continue
            batch.append((message, envelope))
        if not batch:
            return
        try:
            applied = await self.consumer.handle_batch(self.db, self.tables, [e for _, e in batch])
        except Exception as exc:
            log.warning(
                "consumer %s: a batch of %d failed (%s); one by one",
                self.consumer.name,
                len(batch),
                exc,
            )
            for message, _ in batch:
                await self._process(message)
            return
        self.stats["handled"] += applied
        self.stats["duplicates"] += len(batch) - applied
        for message, _ in batch:
            await message.ack()


activity = BatchConsumer("metrics__activity", batch=1000)


async def _one(session: AsyncSession, envelope: Envelope) -> None:
    """One event (the kernel's per-message path: retries and dead letters)."""
    await ingest_events(session, [envelope])


for _context in CONTEXTS:
    activity.handles_context(_context)(_one)
