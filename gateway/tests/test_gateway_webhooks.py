"""Webhooks end to end: events published on real JetStream, a durable consumer in the gateway,
signed deliveries to a real HTTP receiver that fails for a while and then recovers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from hearth_gateway.webhooks import matches, sign, verify_signature
from servicekit.ids import utcnow
from servicekit.testing.harness import Broker, eventually, relay_envelope

SECRET = "whsec_test_secret_0123456789"
JOINED = "hearth.members.member.joined.v1"


@dataclass
class Receiver:
    url: str = ""
    fail_next: int = 0
    accepted: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0


@pytest.fixture
def receiver(server_thread) -> Iterator[Receiver]:
    state = Receiver()
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> JSONResponse:
        body = await request.body()
        if state.fail_next > 0:
            state.fail_next -= 1
            state.refused += 1
            return JSONResponse({"error": "down for maintenance"}, status_code=503)
        state.accepted.append(
            {
                "event_id": request.headers["hearth-event-id"],
                "attempt": int(request.headers["hearth-delivery-attempt"]),
                "signed": verify_signature(SECRET, request.headers["hearth-signature"], body),
                "body": body,
            }
        )
        return JSONResponse({"ok": True})

    with server_thread(app) as server:
        state.url = f"{server.url}/hook"
        yield state


@pytest.fixture
def webhook_settings(nats_url: str, subject_prefix: str) -> dict[str, Any]:
    return {
        "webhooks_enabled": True,
        "nats_url": nats_url,
        "subject_prefix": subject_prefix,
        "webhook_contexts": ["members", "events"],
        "webhook_poll_seconds": 0.05,
        "webhook_backoff_base_seconds": 0.05,
        "webhook_backoff_cap_seconds": 0.2,
    }


async def admin(http: httpx.AsyncClient) -> dict[str, str]:
    response = await http.post(
        "/auth/token", json={"username": "admin", "password": "hearth-admin"}
    )
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def subscribe(http, headers, url: str, types: list[str]) -> dict[str, Any]:
    response = await http.post(
        "/admin/webhooks",
        json={"url": url, "event_types": types, "secret": SECRET},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_signature_scheme() -> None:
    body = b'{"a":1}'
    header = sign("s3cret", 1_700_000_000, body)
    assert header.startswith("t=1700000000,v1=")
    assert not verify_signature("s3cret", header, body)  # too old
    import time

    fresh = sign("s3cret", int(time.time()), body)
    assert verify_signature("s3cret", fresh, body)
    assert not verify_signature("other", fresh, body)
    assert not verify_signature("s3cret", fresh, body + b" ")
    assert matches(["members.member.*"], JOINED) and matches(["*"], JOINED)
    assert not matches(["events.*"], JOINED)


async def test_failing_receiver_recovers_without_loss_or_duplicates(
    make_gateway, webhook_settings, receiver: Receiver, nats_client, subject_prefix: str
) -> None:
    broker = Broker(nats_client, subject_prefix)
    async with make_gateway(**webhook_settings) as (_, http):
        headers = await admin(http)
        sub = await subscribe(http, headers, receiver.url, ["members.member.*"])
        assert "secret" in sub
        listed = (await http.get("/admin/webhooks", headers=headers)).json()
        assert all("secret" not in s for s in listed)
        receiver.fail_next = 4  # the receiver is down for its first four requests
        published = []
        for n in range(10):
            envelope = relay_envelope(JOINED, subject=str(n), community_id=str(uuid.uuid4()))
            published.append(str(envelope.id))
            await broker.publish(envelope)
        # An event of a type the subscription did not ask for is never delivered.
        await broker.publish(relay_envelope("hearth.members.community.created.v1", x=1))

        async def all_delivered() -> bool:
            return len(receiver.accepted) >= 10

        await eventually(all_delivered, timeout=15)
        ids = [a["event_id"] for a in receiver.accepted]
        assert sorted(ids) == sorted(published) and len(ids) == len(set(ids))
        assert all(a["signed"] for a in receiver.accepted)
        assert receiver.refused == 4 and max(a["attempt"] for a in receiver.accepted) > 1

        async def logged() -> list:
            log = await http.get(f"/admin/webhooks/{sub['id']}/deliveries", headers=headers)
            items = log.json()["items"]
            return items if all(i["status"] == "delivered" for i in items) else []

        items = await eventually(logged)  # the receiver answers before the log is written
        assert len(items) == 10
        assert sum(i["attempts"] for i in items) == 14

        # Replay a time range: the same events (same ids), delivered again on request.
        since = (utcnow() - timedelta(minutes=5)).isoformat()
        until = (utcnow() + timedelta(minutes=1)).isoformat()
        replay = await http.post(
            f"/admin/webhooks/{sub['id']}/replay",
            json={"since": since, "until": until},
            headers=headers,
        )
        assert replay.status_code == 200 and replay.json() == {"requeued": 10}

        async def replayed() -> bool:
            return len(receiver.accepted) >= 20

        await eventually(replayed, timeout=10)
        assert sorted(a["event_id"] for a in receiver.accepted[10:]) == sorted(published)


async def test_deliveries_survive_a_gateway_restart(
    make_gateway, webhook_settings, receiver: Receiver, nats_client, subject_prefix, tmp_path
) -> None:
    broker = Broker(nats_client, subject_prefix)
    database = {"database_url": f"sqlite:///{tmp_path}/restart.db"}
    async with make_gateway(**webhook_settings, **database) as (_, http):
        await subscribe(http, await admin(http), receiver.url, ["*"])
        first = relay_envelope(JOINED, a=1)
        await broker.publish(first)

        async def one() -> bool:
            return len(receiver.accepted) == 1

        await eventually(one)
    # While no gateway runs, events keep arriving on JetStream ...
    later = [relay_envelope(JOINED, a=n) for n in range(3)]
    for envelope in later:
        await broker.publish(envelope)
    # ... and the durable consumer picks them up when the gateway is back.
    async with make_gateway(**webhook_settings, **database) as (_, http):

        async def four() -> bool:
            return len(receiver.accepted) >= 4

        await eventually(four)
    ids = [a["event_id"] for a in receiver.accepted]
    assert ids[0] == str(first.id) and sorted(ids[1:]) == sorted(str(e.id) for e in later)


async def test_persistent_failure_disables_then_re_enable_resumes(
    make_gateway, webhook_settings, receiver: Receiver, nats_client, subject_prefix, caplog
) -> None:
    broker = Broker(nats_client, subject_prefix)
    async with make_gateway(**webhook_settings, webhook_disable_after_failures=3) as (_, http):
        headers = await admin(http)
        sub = await subscribe(http, headers, receiver.url, ["members.*"])
        receiver.fail_next = 1_000
        event = relay_envelope(JOINED, a=1)
        await broker.publish(event)

        async def disabled() -> dict:
            listed = (await http.get("/admin/webhooks", headers=headers)).json()
            mine = next(s for s in listed if s["id"] == sub["id"])
            return mine if mine["status"] == "disabled" else {}

        state = await eventually(disabled)
        assert "3 consecutive failed deliveries" in state["disabled_reason"]
        assert "disabled after 3 consecutive failures" in caplog.text  # the alert
        refused = receiver.refused
        receiver.fail_next = 0
        enable = await http.patch(
            f"/admin/webhooks/{sub['id']}", json={"status": "active"}, headers=headers
        )
        assert enable.status_code == 200 and enable.json()["failure_streak"] == 0

        async def delivered() -> bool:
            return len(receiver.accepted) == 1

        await eventually(delivered)
        assert receiver.accepted[0]["event_id"] == str(event.id) and receiver.refused == refused


async def test_only_admins_manage_webhooks(client: httpx.AsyncClient) -> None:
    token = (
        await client.post(
            "/auth/token", json={"username": "operator", "password": "hearth-operator"}
        )
    ).json()["access_token"]
    for headers, status in (({}, 401), ({"Authorization": f"Bearer {token}"}, 403)):
        for method, path in (
            ("GET", "/admin/webhooks"),
            ("POST", "/admin/webhooks"),
            ("PATCH", f"/admin/webhooks/{uuid.uuid4()}"),
            ("DELETE", f"/admin/webhooks/{uuid.uuid4()}"),
            ("GET", f"/admin/webhooks/{uuid.uuid4()}/deliveries"),
            ("POST", f"/admin/webhooks/{uuid.uuid4()}/replay"),
        ):
            response = await client.request(method, path, headers=headers, json={})
            assert response.status_code == status, (method, path, response.text)


async def test_webhook_admin_validation(client: httpx.AsyncClient) -> None:
    headers = await admin(client)
    bad = [
        {"url": "ftp://x", "event_types": ["*"]},
        {"url": "https://x.example", "event_types": []},
        {"url": "https://x.example", "event_types": ["Bad Type"]},
        {"url": "https://x.example", "event_types": ["*"], "secret": "short"},
    ]
    for body in bad:
        assert (await client.post("/admin/webhooks", json=body, headers=headers)).status_code == 422
    missing = uuid.uuid4()
    assert (await client.delete(f"/admin/webhooks/{missing}", headers=headers)).status_code == 404
    sub = await subscribe(client, headers, "https://x.example/hook", ["*"])
    now = utcnow().isoformat()
    inverted = await client.post(
        f"/admin/webhooks/{sub['id']}/replay", json={"since": now, "until": now}, headers=headers
    )
    assert inverted.status_code == 422
    assert (await client.delete(f"/admin/webhooks/{sub['id']}", headers=headers)).status_code == 204
