"""Helpers the members tests share: staff headers, a community, joining, points, events."""

from __future__ import annotations

import uuid
from typing import Any

from servicekit.events import Envelope, nats_subject
from servicekit.testing.harness import Broker, Identities, RunningService, relay_envelope

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


async def publish(
    nats_client: Any, prefix: str, ce_type: str, data: dict, *, envelope: Envelope | None = None
) -> Envelope:
    """Publish a CloudEvent as its producer would (a fresh Nats-Msg-Id each time)."""
    env = envelope or relay_envelope(ce_type, **data)
    # A fresh Nats-Msg-Id, so JetStream does not dedupe and the inbox/ledger must.
    await Broker(nats_client, prefix).publish(env, msg_id=uuid.uuid4().hex)
    return env


async def published(nats_client: Any, prefix: str, ce_type: str) -> list[Envelope]:
    """Every event of a type on the stream so far."""
    return await Broker(nats_client, prefix).read(nats_subject(prefix, ce_type))
