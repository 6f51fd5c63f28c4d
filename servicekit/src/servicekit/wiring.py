"""A process's event plumbing: NATS connection, outbox, relay and consumers, in one order.

Services get it through ServiceRuntime; the gateway, which is no ServiceRuntime, uses it
directly for its own outbox (`gateway.webhook.disabled.v1`), so there is one shutdown order.
"""

from __future__ import annotations

import asyncio
import logging

from servicekit.consumer import ConsumerRuntime, EventConsumer
from servicekit.db import Database
from servicekit.events import validate_prefix
from servicekit.messaging import NatsConnection
from servicekit.outbox import Outbox
from servicekit.relay import OutboxRelay
from servicekit.settings import ServiceSettings
from servicekit.tables import KitTables

log = logging.getLogger(__name__)

# How long stop() lets the relay finish the batch in hand; the rest waits in the outbox.
RELAY_STOP_SECONDS = 5.0


class EventWiring:
    """Owns the NATS connection, the outbox writer, the relay and the running consumers."""

    def __init__(
        self, db: Database, tables: KitTables, settings: ServiceSettings, *, context: str
    ) -> None:
        self.db = db
        self.tables = tables
        self.settings = settings
        self.prefix = validate_prefix(settings.subject_prefix)
        self.nats = NatsConnection(settings.nats_url, name=f"hearth-{context}")
        self.outbox = Outbox(tables, source=f"/hearth/{context}", subject_prefix=self.prefix)
        self.relay = OutboxRelay(
            db,
            tables,
            self.nats,
            context=context,
            subject_prefix=self.prefix,
            batch_size=settings.relay_batch_size,
            poll_seconds=settings.relay_poll_seconds,
            retention_hours=settings.outbox_retention_hours,
            stream_max_age_days=settings.stream_max_age_days,
            stream_replicas=settings.stream_replicas,
        )
        self.consumers: list[ConsumerRuntime] = []
        self._relay_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Connect in the background and run the relay."""
        self.nats.start()
        self._relay_task = asyncio.create_task(self.relay.run(), name="outbox-relay")

    def start_consumer(self, consumer: EventConsumer) -> ConsumerRuntime:
        """Run one declared consumer with the process's settings."""
        running = consumer.start(
            db=self.db,
            tables=self.tables,
            nats=self.nats,
            subject_prefix=self.prefix,
            max_deliver=self.settings.consumer_max_deliver,
            ack_wait=self.settings.consumer_ack_wait_seconds,
            drain_seconds=self.settings.consumer_drain_seconds,
            backoff=self.settings.consumer_backoff_seconds,
            stream_max_age_days=self.settings.stream_max_age_days,
            stream_replicas=self.settings.stream_replicas,
        )
        self.consumers.append(running)
        return running

    async def stop(self) -> None:
        """Drain consumers, let the relay finish its batch and release its lease, close NATS."""
        for consumer in self.consumers:
            await consumer.stop()
        task = self._relay_task
        if task is not None:
            self.relay.stop()
            try:
                await asyncio.wait_for(task, RELAY_STOP_SECONDS)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
            except Exception:
                log.exception("outbox relay failed during shutdown")
            await self.relay.close()  # releases the lease; never raises
        await self.nats.close()
