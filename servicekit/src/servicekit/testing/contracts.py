"""Producer contracts in consumer tests: events built and checked by the producer's own model.

A consumer's tests publish (or hand its handlers) events whose payload is validated by the
producing context's event model, found by CloudEvents type in the kernel registry (or passed
in). So a field a producer renames, drops or makes required breaks the consumer's tests, not
production. Domain-free: the producer's model is the only thing it knows about an event.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from servicekit import catalogue
from servicekit.events import REGISTRY, Envelope, Event, context_of, nats_subject
from servicekit.ids import utcnow, uuid7
from servicekit.testing.harness import Broker

# Import every hearth-* package's events module: the producers' models fill the registry.
catalogue.discover()


def contract(ce_type: str | type[Event]) -> type[Event]:
    """The producer's payload model of an event type (from the kernel registry)."""
    if isinstance(ce_type, type):
        return ce_type
    model = REGISTRY.get(ce_type)
    assert model is not None, f"no producer defines {ce_type}: add it to its events.py first"
    return model


def producer_payload(ce_type: str | type[Event], data: dict[str, Any]) -> Event:
    """`data` as the producer's model: a missing, mistyped or unknown field fails the test."""
    model = contract(ce_type)
    unknown = sorted(set(data) - set(model.model_fields))
    assert not unknown, f"{model.__name__} ({model.ce_type()}) has no fields {unknown}"
    return model.model_validate(data)


def producer_envelope(
    ce_type: str | type[Event],
    data: dict[str, Any],
    *,
    subject: str | None = None,
    time: datetime | None = None,
) -> Envelope:
    """An envelope as the producer's outbox writes it, its data checked by the producer's model."""
    payload = producer_payload(ce_type, data)
    return Envelope(
        id=uuid7(),
        source=f"/hearth/{context_of(payload.ce_type())}",
        type=payload.ce_type(),
        time=time or utcnow(),
        subject=subject,
        data=payload.model_dump(mode="json"),
    )


async def publish(
    nats_client: Any,
    prefix: str,
    ce_type: str,
    data: dict[str, Any],
    *,
    envelope: Envelope | None = None,
    subject: str | None = None,
) -> Envelope:
    """Publish a CloudEvent as its producer would (a fresh Nats-Msg-Id each time).

    The payload is the producer's model dumped as its relay does. `envelope` publishes an event
    built before again (same CloudEvents id: a redelivery or a producer's retry); its data is
    checked against the producer's model too.
    """
    if envelope is None:
        envelope = producer_envelope(ce_type, data, subject=subject)
    else:
        assert envelope.type == ce_type, (envelope.type, ce_type)
        producer_payload(ce_type, envelope.data)
    # A fresh Nats-Msg-Id, so JetStream does not dedupe and the inbox/ledger must.
    await Broker(nats_client, prefix).publish(envelope, msg_id=uuid.uuid4().hex)
    return envelope


async def published(nats_client: Any, prefix: str, ce_type: str) -> list[Envelope]:
    """Every event of a type on the stream so far."""
    return await Broker(nats_client, prefix).read(nats_subject(prefix, ce_type))
