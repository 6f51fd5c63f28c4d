"""Outbox relay: publishes committed outbox rows to JetStream in sequence order."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from nats.errors import NoRespondersError
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from servicekit import backoff
from servicekit.db import Database, affected_rows
from servicekit.events import Envelope
from servicekit.ids import utcnow
from servicekit.lease import Lease
from servicekit.messaging import NatsConnection, ensure_stream, stream_config
from servicekit.outbox import OUTBOX_DIRTY
from servicekit.tables import KitTables

log = logging.getLogger(__name__)

# A PubAck takes milliseconds; a publish lost with a crashed broker must not hold the
# relay for long once the broker is back (the retry republishes under the same Nats-Msg-Id).
PUBLISH_TIMEOUT_SECONDS = 2.0
# Cap of the retry back-off after a failed batch; a reconnect cuts the wait short anyway.
MAX_BACKOFF_SECONDS = 1.0


class OutboxRelay:
    """One loop per service: wake on commit (or poll), publish in order, await every PubAck.

    Rows are read and marked in short transactions and published in between, so a slow or
    absent NATS never holds a database lock. A crash between publish and mark re-publishes the
    same event id, which JetStream's duplicate window and the consumers' inbox both absorb.
    """

    def __init__(
        self,
        db: Database,
        tables: KitTables,
        nats: NatsConnection,
        *,
        context: str,
        subject_prefix: str,
        batch_size: int = 100,
        poll_seconds: float = 0.5,
        retention_hours: float = 24.0,
        stream_max_age_days: float = 30.0,
        stream_replicas: int = 1,
    ) -> None:
        self.db = db
        self.table = tables.outbox
        self.nats = nats
        self.stream = stream_config(
            subject_prefix, context, max_age_days=stream_max_age_days, replicas=stream_replicas
        )
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.retention = timedelta(hours=retention_hours)
        self.lease = Lease(db, f"outbox-relay:{context}")
        self._wake = asyncio.Event()
        self._reconnected = asyncio.Event()
        self._stream_ready = False
        self._stopping = False
        self._running = False
        self.published_total = 0
        db.after_commit.append(self._after_commit)
        nats.on_reconnect.append(self._on_reconnect)

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(OUTBOX_DIRTY, False):
            self._wake.set()

    async def _on_reconnect(self) -> None:
        self._stream_ready = False  # the server may be new (emptied); check the stream again
        self._reconnected.set()
        self._wake.set()

    def wake(self) -> None:
        """Ask the loop to look for pending rows now."""
        self._wake.set()

    @property
    def holds_lease(self) -> bool:
        """True while this relay runs and holds the lease, so it is the one that publishes."""
        # A relay that was built but never run (the gateway without webhooks) publishes nothing,
        # even on SQLite, where the lease itself is always held.
        return self._running and (self.lease._conn is not None or self.db.is_sqlite)

    async def run(self) -> None:
        """Publish until stopped; back off while NATS or the database is unavailable."""
        self._running = True
        try:
            await self._loop()
        finally:
            self._running = False

    async def _loop(self) -> None:
        failures = 0
        last_cleanup = 0.0
        loop = asyncio.get_running_loop()
        while not self._stopping:
            self._reconnected.clear()  # before the attempt, so a reconnect during it counts
            try:
                published = await self.publish_pending()
                failures = 0
                if loop.time() - last_cleanup > 60:
                    await self.cleanup()
                    last_cleanup = loop.time()
                if published:
                    continue  # there may be more
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                # No jitter: one relay per context holds the lease, nobody to fall in step with.
                wait = backoff.delay(failures, base=0.1, cap=MAX_BACKOFF_SECONDS, low=1.0)
                log.warning("outbox relay: %s; retrying in %.1fs", exc, wait)
                try:  # the broker coming back ends the wait: publish the backlog at once
                    await asyncio.wait_for(self._reconnected.wait(), wait)
                except TimeoutError:
                    pass
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            except TimeoutError:
                pass
            self._wake.clear()

    def stop(self) -> None:
        """Finish the current batch and leave the loop."""
        self._stopping = True
        self._wake.set()

    async def publish_pending(self) -> int:
        """Publish one batch of pending rows; returns how many were published."""
        if not self.nats.connected or self.nats.js is None:
            return 0
        if not await self.lease.held():
            return 0
        js = self.nats.js
        if not self._stream_ready:
            await ensure_stream(js, self.stream)
            self._stream_ready = True
        async with self.db.session() as session:
            rows = (
                await session.execute(
                    select(self.table)
                    .where(self.table.c.published_at.is_(None))
                    .order_by(self.table.c.seq)
                    .limit(self.batch_size)
                )
            ).all()
            await session.commit()
        if not rows:
            return 0
        done: list[int] = []
        error: Exception | None = None
        for row in rows:
            try:
                envelope = _envelope(row)
                await js.publish(
                    row.nats_subject,
                    envelope.body(),
                    headers=envelope.headers(),
                    timeout=PUBLISH_TIMEOUT_SECONDS,
                )
            except NoRespondersError as exc:  # stream missing (e.g. a wiped server)
                self._stream_ready = False
                error = exc
                break
            except Exception as exc:
                error = exc
                break
            done.append(row.seq)
        async with self.db.session() as session:
            if done:
                await session.execute(
                    update(self.table)
                    .where(self.table.c.seq.in_(done))
                    .values(published_at=utcnow())
                )
            if error is not None:
                failed_seq = rows[len(done)].seq
                await session.execute(
                    update(self.table)
                    .where(self.table.c.seq == failed_seq)
                    .values(attempts=self.table.c.attempts + 1, last_error=str(error)[:2000])
                )
            await session.commit()
        self.published_total += len(done)
        if error is not None:
            raise error
        return len(done)

    async def backlog(self) -> tuple[int, float | None]:
        """Pending row count and the age in seconds of the oldest pending row."""
        async with self.db.session() as session:
            count, oldest = (
                await session.execute(
                    select(func.count(), func.min(self.table.c.occurred_at)).where(
                        self.table.c.published_at.is_(None)
                    )
                )
            ).one()
            await session.commit()
        if oldest is None:
            return count, None
        return count, (utcnow() - oldest).total_seconds()

    async def cleanup(self) -> int:
        """Delete published rows older than the retention period."""
        async with self.db.session() as session:
            result = await session.execute(
                delete(self.table).where(self.table.c.published_at < utcnow() - self.retention)
            )
            await session.commit()
        return affected_rows(result)

    async def close(self) -> None:
        """Release the lease."""
        await self.lease.release()


def _envelope(row: Any) -> Envelope:
    return Envelope(
        id=row.event_id,
        source=row.source,
        type=row.event_type,
        time=row.occurred_at,
        subject=row.ce_subject,
        data=row.data,
        traceparent=row.traceparent,
        tracestate=row.tracestate,
    )
