"""Transactional outbox: events are rows written in the same transaction as the state change."""

from __future__ import annotations

from typing import Any

from opentelemetry import propagate
from sqlalchemy.orm import Session
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
        envelope = self.envelope(payload, subject=subject)
        await session.execute(self.table.insert().values(**self._row(envelope)))
        session.sync_session.info[OUTBOX_DIRTY] = True
        return envelope

    def record_in_flush(
        self, session: Session, payloads: list[tuple[Event, str | None]]
    ) -> list[Envelope]:
        """Add events from inside a flush (a sync session event hook), in the same transaction.

        Hooks such as `after_flush_postexec` are synchronous; under the asyncio extension they
        run inside its greenlet, so a Core INSERT on the session's connection is allowed there.
        """
        envelopes = [self.envelope(p, subject=s) for p, s in payloads]
        if envelopes:
            session.connection().execute(self.table.insert(), [self._row(e) for e in envelopes])
            session.info[OUTBOX_DIRTY] = True
        return envelopes

    def envelope(self, payload: Event, *, subject: str | None = None) -> Envelope:
        """A fresh envelope carrying the trace context as of now (the write, not the publish)."""
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        return Envelope.new(self.source, payload, subject).model_copy(
            update={
                "traceparent": carrier.get("traceparent"),
                "tracestate": carrier.get("tracestate"),
            }
        )

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
