"""The gateway's outbox on /metrics and /admin/outbox, under the services' names and labels.

An event written through the gateway's own outbox while NATS is unreachable shows as pending
(with its age) on both, and drops to zero once a gateway with NATS publishes it to the real
stream; the figures carry `service="gateway"`, so the services' alert rules cover it.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from hearth_gateway.events import WebhookDisabled
from servicekit.events import stream_name
from servicekit.ids import utcnow
from servicekit.testing.backends import Backends
from servicekit.testing.harness import Broker, eventually, relay_envelope

PROBLEM = "application/problem+json"
ALERTS = Path(__file__).parents[2] / "deploy/k8s/components/monitoring/alerts.yaml"
OUTBOX_FIELDS = {"pending", "oldest_pending_age_seconds", "published_since_start"}


def gateway_samples(text: str) -> dict[str, float]:
    """Every sample labelled service="gateway", by name (with the other labels appended)."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = dict(sample.labels)
            if labels.pop("service", None) != "gateway":
                continue
            rest = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
            out[f"{sample.name}{{{rest}}}" if rest else sample.name] = sample.value
    return out


async def scrape(http: httpx.AsyncClient) -> dict[str, float]:
    response = await http.get("/metrics")  # no token: NetworkPolicy decides who scrapes
    assert response.status_code == 200
    return gateway_samples(response.text)


async def token(http: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await http.post(
        "/auth/token", json={"username": username, "password": f"hearth-{username}"}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def record_event(app: Any) -> uuid.UUID:
    """gateway.webhook.disabled.v1 written through the gateway's own outbox, as on a disable."""
    event = WebhookDisabled(
        subscription_id=uuid.uuid4(),
        created_by=uuid.uuid4(),
        url_origin="https://hooks.example",
        reason="test",
        failure_streak=20,
        disabled_at=utcnow(),
    )
    async with app.state.db.session() as session:
        envelope = await app.state.outbox.record(session, event)
        await session.commit()
    return envelope.id


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_a_pending_event_shows_until_the_relay_publishes_it(
    make_gateway,
    dead_url: str,
    nats_url: str,
    nats_client,
    subject_prefix: str,
    backends: Backends,
    database: str,
) -> None:
    if database == "postgres" and not backends.postgres_admin_url:
        pytest.skip("PostgreSQL is not available")
    url = backends.database_url("gateway", database)
    webhooks = {
        "webhooks_enabled": True,
        "subject_prefix": subject_prefix,
        "webhook_contexts": ["members"],
        "relay_poll_seconds": 0.05,
        "database_url": url,
    }
    unreachable = "nats://" + dead_url.removeprefix("http://")
    async with make_gateway(**webhooks, nats_url=unreachable) as (app, http):
        operator = await token(http, "operator")
        quiet = await scrape(http)
        assert quiet["hearth_outbox_pending"] == 0
        assert quiet["hearth_outbox_oldest_pending_age_seconds"] == 0
        assert quiet["hearth_outbox_published_total"] == 0
        event_id = await record_event(app)
        await asyncio.sleep(0.2)  # the relay is awake and polling; NATS is not there
        waiting = await scrape(http)
        assert waiting["hearth_outbox_pending"] == 1
        assert waiting["hearth_outbox_oldest_pending_age_seconds"] >= 0.2
        assert waiting["hearth_outbox_published_total"] == 0
        # The relay runs; on PostgreSQL it takes the lease only once NATS answers (SQLite's
        # lease is always held), so HearthRelayLeaseUnheld fires there along with the backlog.
        held = 1.0 if database == "sqlite" else 0.0
        assert waiting["hearth_outbox_relay_lease_held"] == held
        assert waiting["hearth_db_pool_checked_out"] >= 0
        status = await http.get("/admin/outbox", headers=operator)
        assert status.status_code == 200, status.text
        body = status.json()
        assert set(body) == OUTBOX_FIELDS
        assert body["pending"] == 1 and body["published_since_start"] == 0
        assert body["oldest_pending_age_seconds"] >= 0.2
    # Another gateway on the same database, with NATS: it publishes the waiting event.
    async with make_gateway(**webhooks, nats_url=nats_url) as (_, http):
        operator = await token(http, "operator")

        async def published() -> dict[str, float]:
            samples = await scrape(http)
            return samples if samples["hearth_outbox_pending"] == 0 else {}

        samples = await eventually(published, timeout=15)
        assert samples["hearth_outbox_oldest_pending_age_seconds"] == 0
        assert samples["hearth_outbox_published_total"] == 1
        assert samples["hearth_outbox_relay_lease_held"] == 1
        body = (await http.get("/admin/outbox", headers=operator)).json()
        assert body == {
            "pending": 0,
            "oldest_pending_age_seconds": None,
            "published_since_start": 1,
        }
        # The webhook consumer's JetStream lag is there too, under the services' names.
        await Broker(nats_client, subject_prefix).publish(
            relay_envelope("hearth.members.member.joined.v1", n=1)
        )
        stream = stream_name(subject_prefix, "members")
        lag = f"hearth_consumer_pending{{consumer=gateway__webhooks,stream={stream}}}"

        async def consumed() -> dict[str, float]:
            samples = await scrape(http)
            return samples if samples.get(lag) == 0 else {}

        samples = await eventually(consumed, timeout=20)
        assert lag.replace("pending", "ack_pending", 1) in samples
        # And the kernel consumer's own counters, as every service reports them.
        handled = "hearth_consumer_messages_total{consumer=gateway__webhooks,outcome=handled}"

        async def counted() -> dict[str, float]:
            samples = await scrape(http)
            return samples if samples.get(handled) == 1 else {}

        samples = await eventually(counted, timeout=10)
        assert samples["hearth_consumer_loop_errors_total{consumer=gateway__webhooks}"] == 0
        dead = "hearth_consumer_messages_total{consumer=gateway__webhooks,outcome=dead_lettered}"
        assert samples[dead] == 0
    events = await Broker(nats_client, subject_prefix).read(
        f"{subject_prefix}.gateway.webhook.disabled.v1"
    )
    assert [e.id for e in events] == [event_id]


async def test_without_webhooks_the_outbox_is_read_but_nothing_publishes(
    client: httpx.AsyncClient,
) -> None:
    """The session's gateway runs no relay (webhooks off): the backlog is still reported, and
    the lease gauge says nobody publishes, even on SQLite where the lease is always free."""
    samples = await scrape(client)
    assert samples["hearth_outbox_pending"] == 0
    assert samples["hearth_outbox_published_total"] == 0
    assert samples["hearth_outbox_relay_lease_held"] == 0
    assert samples["hearth_db_pool_checked_out"] >= 0
    assert not any(name.startswith("hearth_consumer_") for name in samples)


async def test_only_operators_and_admins_read_the_outbox(client: httpx.AsyncClient) -> None:
    for who in ("operator", "admin"):
        response = await client.get("/admin/outbox", headers=await token(client, who))
        assert response.status_code == 200, (who, response.text)
        assert set(response.json()) == OUTBOX_FIELDS
    member = await client.get("/admin/outbox", headers=await token(client, "member"))
    assert member.status_code == 403 and member.headers["content-type"].startswith(PROBLEM)
    assert member.json()["detail"] == "requires the platform role admin or operator"
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic x"}):
        response = await client.get("/admin/outbox", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["content-type"].startswith(PROBLEM)
        assert response.headers["www-authenticate"].startswith("Bearer")
    # An API key is a service principal: whatever its scopes, it never reads the outbox.
    created = await client.post(
        "/auth/api-keys",
        json={"name": "ops-bot", "scopes": ["ops:read"]},
        headers=await token(client, "admin"),
    )
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    as_bearer = await client.get("/admin/outbox", headers={"Authorization": f"Bearer {key}"})
    assert as_bearer.status_code == 403, as_bearer.text
    # The admin routes read bearer tokens only: an X-API-Key header is no credential there.
    assert (await client.get("/admin/outbox", headers={"X-API-Key": key})).status_code == 401


async def test_the_outbox_and_pool_alerts_cover_the_gateway(client: httpx.AsyncClient) -> None:
    """The rules group by the `service` label and name no service, so they cover the gateway as
    long as it exports what they read: every outbox and pool metric they use is in its scrape."""
    rules = [
        rule
        for group in yaml.safe_load(ALERTS.read_text())["spec"]["groups"]
        for rule in group["rules"]
    ]
    exported = {name.split("{")[0] for name in await scrape(client)}
    used = set()
    for rule in rules:
        assert "service=" not in rule["expr"] and "service!" not in rule["expr"], rule["alert"]
        for name in re.findall(r"\b(hearth_(?:outbox|db_pool)_[a-z_]+)", rule["expr"]):
            used.add(name)
            assert name in exported, f"{rule['alert']} reads {name}, which the gateway lacks"
    assert {"hearth_outbox_oldest_pending_age_seconds", "hearth_outbox_pending"} <= used
    assert {"hearth_outbox_relay_lease_held", "hearth_db_pool_checked_out"} <= used
