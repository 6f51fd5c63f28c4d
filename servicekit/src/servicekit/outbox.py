"""Transactional outbox: events are rows written in the same transaction as the state change."""

from __future__ import annotations

from typing import Any

from opentelemetry import propagate
from sqlmodel.ext.asyncio.session import AsyncSession

from servicekit.events import Envelope, Event, nats_subject
from servicekit.tables import KitTables

OUTBOX_DIRTY = "servicekit.outbox_dirty"


class Outbox:
    """Records events into a session's transaction; the relay publishes them after commit."""

    def __init__(self, tables: KitTables, *, source: str, subject_prefix: str) -> None:
        self.table = tables.outbox
        self.source = source
        self.subject_prefix = subject_prefix

    async def record(
        self, session: AsyncSession, payload: Event, *, subject: str | None = None
    ) -> Envelope:
        """Add an event to the session's transaction; nothing leaves before it commits."""
        carrier: dict[str, str] = {}
        propagate.inject(carrier)  # trace context as of the write, not of the later publish
        envelope = Envelope.new(self.source, payload, subject).model_copy(
            update={
                "traceparent": carrier.get("traceparent"),
                "tracestate": carrier.get("tracestate"),
            }
        )
        await session.execute(self.table.insert().values(**self._row(envelope)))
        session.sync_session.info[OUTBOX_DIRTY] = True
        return envelope

    def _row(self, envelope: Envelope) -> dict[str, Any]:
        return {
            "event_id": envelope.id,
            "event_type": envelope.type,
            "nats_subject": nats_subject(self.subject_prefix, envelope.type),
            "source": envelope.source,
            "ce_subject": envelope.subject,
            "occurred_at": envelope.time,
            "data": envelope.data,
            "traceparent": envelope.traceparent,
            "tracestate": envelope.tracestate,
        }
