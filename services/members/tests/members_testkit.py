"""Helpers the members tests share: staff headers, a community, joining, points, events.

Events of other contexts are published the way their producers will publish them: the payload
is built and validated by the producer's own model (found by event type in the kernel's
registry), so a field a producer renames or adds as required breaks these tests, not production.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from servicekit import catalogue
from servicekit.events import REGISTRY, Envelope, Event, context_of, nats_subject
from servicekit.testing.harness import Broker, Identities, RunningService

# Import every hearth-* package's events module: the producers' models fill the registry.
catalogue.discover()

PROBLEM = "application/problem+json"
OPERATOR = uuid.UUID("00000000-0000-7000-8000-000000000001")


def staff(identities: Identities) -> dict[str, str]:
    """Headers of the dev operator (platform staff)."""
    return identities.headers(OPERATOR, "operator")


async def make_community(members: RunningService, identities: Identities, **extra: Any) -> str:
    """A community created by the operator; returns its id."""
    body = {"name": f"c-{uuid.uuid4().hex[:6]}", "kind": "customer", **extra}
    r = await members.client.post("/communities", json=body, headers=staff(identities))
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def join(members: RunningService, identities: Identities, cid: str, user: uuid.UUID) -> None:
    """The user joins the (open) community."""
    r = await members.client.post(f"/communities/{cid}/members", headers=identities.headers(user))
    assert r.status_code in (200, 201), r.text


async def adjust(
    members: RunningService, identities: Identities, cid: str, user: uuid.UUID, points: int
) -> dict:
    """A manual award by the operator."""
    r = await members.client.post(
        f"/communities/{cid}/points/adjustments",
        json={"user_id": str(user), "points": points, "reason": "test"},
        headers=staff(identities),
    )
    assert r.status_code == 201, r.text
    return r.json()


def contract(ce_type: str) -> type[Event]:
    """The producer's payload model of an event type (from the kernel registry)."""
    model = REGISTRY.get(ce_type)
    assert model is not None, f"no producer defines {ce_type}: add it to its events.py first"
    return model


def producer_payload(ce_type: str, data: dict[str, Any]) -> Event:
    """`data` as the producer's model: a missing, mistyped or unknown field fails the test."""
    model = contract(ce_type)
    unknown = sorted(set(data) - set(model.model_fields))
    assert not unknown, f"{model.__name__} ({ce_type}) has no fields {unknown}"
    return model.model_validate(data)


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
        payload = producer_payload(ce_type, data)
        envelope = Envelope.new(f"/hearth/{context_of(ce_type)}", payload, subject=subject)
    else:
        assert envelope.type == ce_type, (envelope.type, ce_type)
        producer_payload(ce_type, envelope.data)
    # A fresh Nats-Msg-Id, so JetStream does not dedupe and the inbox/ledger must.
    await Broker(nats_client, prefix).publish(envelope, msg_id=uuid.uuid4().hex)
    return envelope


async def published(nats_client: Any, prefix: str, ce_type: str) -> list[Envelope]:
    """Every event of a type on the stream so far."""
    return await Broker(nats_client, prefix).read(nats_subject(prefix, ce_type))


def took(svc: RunningService, consumer: str, deliveries: int) -> Callable[[], Awaitable[bool]]:
    """An `eventually` check: the consumer has taken this many deliveries (applied or not)."""
    [running] = [c for c in svc.runtime.consumers if c.consumer.name == consumer]

    async def check() -> bool:
        stats = running.stats
        assert stats["dead_lettered"] == 0, stats
        return stats["handled"] + stats["duplicates"] >= deliveries

    return check
