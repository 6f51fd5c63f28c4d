"""Webhooks end to end: events published on real JetStream, a durable consumer in the gateway,
signed deliveries to a real HTTP receiver that fails for a while and then recovers (it checks
signatures with the stdlib alone, as the README tells receivers to); back-off and final failure;
events held while a subscription is disabled and sent on re-enable; two replicas sharing one
database and one NATS; secrets encrypted at rest and rolled; targets on private addresses
refused (SSRF); auto-disable notifying the subscription's creator through members."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import MetaData, select
from sqlalchemy.ext.asyncio import create_async_engine

from hearth_gateway.dev_accounts import DEV_ACCOUNTS
from hearth_gateway.webhook_keys import add_key
from hearth_gateway.webhook_targets import PublicOnlyResolver, address_refusal
from hearth_gateway.webhooks import WebhookPolicy, matches, sign, verify_signature
from servicekit.crypto import DecryptionError, Keyring
from servicekit.db import async_url
from servicekit.ids import utcnow
from servicekit.testing.backends import Backends
from servicekit.testing.harness import Broker, Identities, eventually, relay_envelope

SECRET = "whsec_test_secret_0123456789"
JOINED = "hearth.members.member.joined.v1"
PUBLIC = "https://1.1.1.1/hook"  # a public address (never contacted: no dispatcher there)
ADMIN = DEV_ACCOUNTS["admin"].subject


def receiver_verifies(secret: str, header: str, body: bytes, *, tolerance: int = 300) -> bool:
    """A receiver's check written from the README alone, with the stdlib (not the gateway's
    verify_signature): `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`, any `v1` may
    match (one per valid secret), and the timestamp must be recent."""
    fields = [part.strip().split("=", 1) for part in header.split(",")]
    stamps = [value for name, value in fields if name == "t"]
    macs = [value for name, value in fields if name == "v1"]
    if len(stamps) != 1 or not macs or abs(time.time() - int(stamps[0])) > tolerance:
        return False
    signed = stamps[0].encode() + b"." + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, mac) for mac in macs)


@dataclass
class Receiver:
    url: str = ""
    fail_next: int = 0
    accepted: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0
    requests: int = 0
    delay: float = 0.0  # seconds each request takes (a slow receiver)

    def ids(self) -> list[str]:
        return [a["event_id"] for a in self.accepted]


@pytest.fixture
def receiver(server_thread) -> Iterator[Receiver]:
    state = Receiver()
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> JSONResponse:
        body = await request.body()
        state.requests += 1
        await asyncio.sleep(state.delay)
        if state.fail_next > 0:
            state.fail_next -= 1
            state.refused += 1
            return JSONResponse({"error": "down for maintenance"}, status_code=503)
        signature = request.headers["hearth-signature"]
        state.accepted.append(
            {
                "event_id": request.headers["hearth-event-id"],
                "attempt": int(request.headers["hearth-delivery-attempt"]),
                "signed": receiver_verifies(SECRET, signature, body),
                # The MAC covers the exact bytes: one byte more and it no longer matches.
                "tamper_refused": not receiver_verifies(SECRET, signature, body + b" "),
                "signature": signature,
                "body": body,
            }
        )
        return JSONResponse({"ok": True})

    with server_thread(app) as server:
        state.url = f"{server.url}/hook"
        yield state


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    """A webhook-secret keyring file, as `hearth-gateway generate-keys` writes it."""
    path = tmp_path / "webhook-secrets.json"
    add_key(path)
    return path


@pytest.fixture
def webhook_settings(nats_url: str, subject_prefix: str, key_file: Path) -> dict[str, Any]:
    return {
        "webhooks_enabled": True,
        "nats_url": nats_url,
        "subject_prefix": subject_prefix,
        "webhook_contexts": ["members", "events"],
        "webhook_poll_seconds": 0.05,
        "webhook_backoff_base_seconds": 0.05,
        "webhook_backoff_cap_seconds": 0.2,
        "webhook_secret_keys_file": key_file,
        # The receivers of these tests listen on 127.0.0.1; the SSRF tests turn this off.
        "webhook_allow_private_targets": True,
    }


async def admin(http: httpx.AsyncClient) -> dict[str, str]:
    response = await http.post(
        "/auth/token", json={"username": "admin", "password": "hearth-admin"}
    )
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def pages(http, path: str, headers, **params: Any) -> list[dict[str, Any]]:
    """Every item of a cursor-paginated list, walking its pages to the end."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = await http.get(path, params=query, headers=headers)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


async def subscriptions(http, headers) -> list[dict[str, Any]]:
    """Every subscription, newest first."""
    return await pages(http, "/admin/webhooks", headers)


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
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"  # exactly the documented scheme
    assert not verify_signature("s3cret", header, body)  # too old
    assert not receiver_verifies("s3cret", header, body)

    now = int(time.time())
    fresh = sign("s3cret", now, body)
    for check in (verify_signature, receiver_verifies):  # the gateway's and the receiver's agree
        assert check("s3cret", fresh, body)
        assert not check("other", fresh, body)
        assert not check("s3cret", fresh, body + b" ")
        # The timestamp is signed too: moving it invalidates the MAC.
        assert not check("s3cret", fresh.replace(f"t={now}", f"t={now - 1}"), body)
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
        listed = await subscriptions(http, headers)
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
        ids = receiver.ids()
        assert sorted(ids) == sorted(published) and len(ids) == len(set(ids))
        assert all(a["signed"] and a["tamper_refused"] for a in receiver.accepted)
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
            listed = await subscriptions(http, headers)
            mine = next(s for s in listed if s["id"] == sub["id"])
            return mine if mine["status"] == "disabled" else {}

        state = await eventually(disabled)
        assert "3 consecutive failed deliveries (last: HTTP 503)" == state["disabled_reason"]
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


async def deliveries(http, headers, sub: dict[str, Any]) -> list[dict[str, Any]]:
    """The subscription's delivery log, oldest event first."""
    return list(reversed(await pages(http, f"/admin/webhooks/{sub['id']}/deliveries", headers)))


async def set_status(http, headers, sub: dict[str, Any], status: str) -> dict[str, Any]:
    response = await http.patch(
        f"/admin/webhooks/{sub['id']}", json={"status": status}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_events_while_disabled_are_held_then_sent_once_on_re_enable(
    make_gateway,
    webhook_settings,
    receiver: Receiver,
    nats_client,
    subject_prefix,
    backends: Backends,
    database: str,
) -> None:
    if database == "postgres" and not backends.postgres_admin_url:
        pytest.skip("PostgreSQL is not available")
    url = backends.database_url("gateway", database)
    broker = Broker(nats_client, subject_prefix)
    async with make_gateway(**webhook_settings, database_url=url) as (_, http):
        headers = await admin(http)
        sub = await subscribe(http, headers, receiver.url, ["members.*"])
        assert (await set_status(http, headers, sub, "disabled"))["status"] == "disabled"
        published = []
        for n in range(5):
            envelope = relay_envelope(JOINED, subject=str(n), n=n)
            published.append(str(envelope.id))
            await broker.publish(envelope)

        async def held() -> list[dict[str, Any]]:
            items = await deliveries(http, headers, sub)
            return items if len(items) == 5 and {i["status"] for i in items} == {"held"} else []

        items = await eventually(held)  # recorded although the subscription is disabled
        assert [i["event_id"] for i in items] == published
        assert all(i["attempts"] == 0 for i in items)
        # Replay of a time range covers held deliveries; on a disabled subscription they stay
        # held (nothing is sent) until it is re-enabled.
        since = (utcnow() - timedelta(minutes=5)).isoformat()
        until = (utcnow() + timedelta(minutes=1)).isoformat()
        replay = await http.post(
            f"/admin/webhooks/{sub['id']}/replay",
            json={"since": since, "until": until},
            headers=headers,
        )
        assert replay.status_code == 200 and replay.json() == {"requeued": 5}
        await asyncio.sleep(0.5)  # ten polls of the dispatcher
        assert receiver.requests == 0
        assert {i["status"] for i in await deliveries(http, headers, sub)} == {"held"}

        assert (await set_status(http, headers, sub, "active"))["status"] == "active"

        async def delivered() -> list[dict[str, Any]]:
            items = await deliveries(http, headers, sub)
            return items if {i["status"] for i in items} == {"delivered"} else []

        items = await eventually(delivered)
        await asyncio.sleep(0.3)  # and nothing arrives twice later
    assert receiver.ids() == published  # every one, once, in the order they happened
    assert all(a["signed"] for a in receiver.accepted)
    assert [i["attempts"] for i in items] == [1] * 5


async def test_auto_disabled_receiver_gets_everything_once_after_the_fix(
    make_gateway, webhook_settings, receiver: Receiver, nats_client, subject_prefix
) -> None:
    broker = Broker(nats_client, subject_prefix)
    settings = {**webhook_settings, "webhook_disable_after_failures": 3}
    async with make_gateway(**settings) as (_, http):
        headers = await admin(http)
        sub = await subscribe(http, headers, receiver.url, ["members.*"])
        receiver.fail_next = 1_000  # the business system is broken
        published = []
        for n in range(2):
            envelope = relay_envelope(JOINED, n=n)
            published.append(str(envelope.id))
            await broker.publish(envelope)

        async def disabled() -> bool:
            listed = await subscriptions(http, headers)
            return next(s for s in listed if s["id"] == sub["id"])["status"] == "disabled"

        await eventually(disabled)
        # While it is disabled, events keep happening ...
        for n in range(2, 6):
            envelope = relay_envelope(JOINED, n=n)
            published.append(str(envelope.id))
            await broker.publish(envelope)

        async def recorded() -> list[dict[str, Any]]:
            items = await deliveries(http, headers, sub)
            return items if len(items) == 6 else []

        items = await eventually(recorded)
        assert {i["status"] for i in items} == {"held"}  # the failed ones are held too
        await asyncio.sleep(0.3)
        assert receiver.requests == receiver.refused == 3  # nothing tried while disabled
        receiver.fail_next = 0  # ... the system is fixed, and the admin re-enables it
        await set_status(http, headers, sub, "active")

        async def six() -> bool:
            return len(receiver.accepted) >= 6

        await eventually(six)
        await asyncio.sleep(0.3)
    assert receiver.ids() == published
    assert receiver.requests == 3 + 6


async def test_stopping_finishes_the_delivery_in_hand_and_hands_back_the_rest(
    make_gateway, webhook_settings, receiver: Receiver, nats_client, subject_prefix, tmp_path
) -> None:
    """A gateway stopping mid-send completes that POST and returns the deliveries it had
    claimed but not sent to `pending`, due at once (not `sending` until their lease ends)."""
    database = {"database_url": f"sqlite:///{tmp_path}/stop.db"}
    broker = Broker(nats_client, subject_prefix)
    async with make_gateway(**webhook_settings, **database) as (_, http):
        headers = await admin(http)
        sub = await subscribe(http, headers, receiver.url, ["members.*"])
        await set_status(http, headers, sub, "disabled")
        for n in range(3):
            await broker.publish(relay_envelope(JOINED, n=n))

        async def held() -> bool:
            return len(await deliveries(http, headers, sub)) == 3

        await eventually(held)
        receiver.delay = 1.0
        await set_status(http, headers, sub, "active")  # all three due: claimed in one batch

        async def in_hand() -> bool:
            return receiver.requests == 1

        await eventually(in_hand)  # the first POST is at the receiver; the gateway stops now
    stopped = utcnow()
    read_only = {**webhook_settings, "webhooks_enabled": False}
    async with make_gateway(**read_only, **database) as (_, http):
        items = await deliveries(http, await admin(http), sub)
    assert [i["status"] for i in items] == ["delivered", "pending", "pending"]
    assert all(datetime.fromisoformat(i["next_attempt_at"]) <= stopped for i in items[1:])
    assert receiver.requests == len(receiver.accepted) == 1


def test_backoff_is_exponential_capped_and_jittered(monkeypatch) -> None:
    import servicekit.backoff as webhooks  # the one back-off helper the policy uses

    policy = WebhookPolicy(
        max_attempts=15,
        backoff_base_seconds=2,
        backoff_cap_seconds=60,
        disable_after_failures=20,
        timeout_seconds=1,
        poll_seconds=1,
    )
    nominal = [2, 4, 8, 16, 32, 60, 60, 60]  # base * 2^(attempt - 1), capped at 60
    calls = []

    def edge(factor: float) -> Any:
        def uniform(low: float, high: float) -> float:
            calls.append((low, high))
            return factor

        return uniform

    monkeypatch.setattr(webhooks.random, "uniform", edge(0.8))
    assert [policy.backoff(n) for n in range(1, 9)] == pytest.approx([0.8 * d for d in nominal])
    monkeypatch.setattr(webhooks.random, "uniform", edge(1.2))
    assert [policy.backoff(n) for n in range(1, 9)] == pytest.approx([1.2 * d for d in nominal])
    assert set(calls) == {(0.8, 1.2)}  # jitter is +-20 %, no more
    assert policy.backoff(1_000) == pytest.approx(72)  # no overflow far past the cap
    monkeypatch.undo()
    samples = [policy.backoff(3) for _ in range(2_000)]
    assert 6.4 <= min(samples) and max(samples) <= 9.6  # 8 s +-20 %
    assert max(samples) - min(samples) > 2.4  # really spread (retries do not align)
    assert sum(samples) / len(samples) == pytest.approx(8, abs=0.2)


async def test_delivery_fails_for_good_after_max_attempts(
    make_gateway, webhook_settings, receiver: Receiver, nats_client, subject_prefix
) -> None:
    settings = {**webhook_settings, "webhook_max_attempts": 2}
    async with make_gateway(**settings) as (_, http):
        headers = await admin(http)
        sub = await subscribe(http, headers, receiver.url, ["members.*"])
        receiver.fail_next = 1_000
        event = relay_envelope(JOINED, a=1)
        await Broker(nats_client, subject_prefix).publish(event)

        async def failed() -> list[dict[str, Any]]:
            items = await deliveries(http, headers, sub)
            return items if items and items[0]["status"] == "failed" else []

        (item,) = await eventually(failed)
        await asyncio.sleep(0.6)  # three times the back-off cap: no third attempt comes
        (again,) = await deliveries(http, headers, sub)
        listed = await subscriptions(http, headers)
    assert item["event_id"] == str(event.id)
    assert item["attempts"] == 2 and again == item
    assert item["last_status_code"] == 503 and item["last_error"] == "HTTP 503"
    assert receiver.requests == receiver.refused == 2
    mine = next(s for s in listed if s["id"] == sub["id"])
    assert mine["status"] == "active" and mine["failure_streak"] == 2  # failed, not disabled


async def test_two_replicas_deliver_each_event_exactly_once(
    make_gateway,
    webhook_settings,
    receiver: Receiver,
    nats_client,
    subject_prefix: str,
    backends: Backends,
) -> None:
    """Two gateways on one PostgreSQL database and one NATS: both consume the shared durable
    consumer and both dispatchers race for the same due deliveries; the claim (compare-and-set
    on status and next_attempt_at) lets exactly one of them send each."""
    if not backends.postgres_admin_url:
        pytest.skip("the replica test needs PostgreSQL (a shared database); none was found")
    shared = {**webhook_settings, "database_url": backends.database_url("gateway", "postgres")}
    broker = Broker(nats_client, subject_prefix)
    async with make_gateway(**shared) as (one, http), make_gateway(**shared) as (two, _):
        headers = await admin(http)
        sub = await subscribe(http, headers, receiver.url, ["members.*"])
        receiver.fail_next = 3  # a few retries too, which both replicas see come due
        published = []
        for n in range(30):
            envelope = relay_envelope(JOINED, n=n)
            published.append(str(envelope.id))
            await broker.publish(envelope)

        async def all_in() -> bool:
            return len(receiver.accepted) >= 30

        await eventually(all_in, timeout=20)
        await asyncio.sleep(0.5)  # let any duplicate arrive
        items = await deliveries(http, headers, sub)
        sent = [app.state.webhook_dispatcher.requests_sent for app in (one, two)]
    print(f"\n[webhook replicas] POSTs per replica: {sent}")
    counts = Counter(receiver.ids())
    assert sorted(counts) == sorted(published) and set(counts.values()) == {1}
    assert sum(sent) == receiver.requests == 30 + 3  # no attempt was made twice
    assert len(items) == 30 and {i["status"] for i in items} == {"delivered"}
    assert sum(i["attempts"] for i in items) == 33


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
            ("POST", f"/admin/webhooks/{uuid.uuid4()}/secret"),
            ("POST", "/admin/webhooks/rotate-secrets-key"),
        ):
            response = await client.request(method, path, headers=headers, json={})
            assert response.status_code == status, (method, path, response.text)


async def walk(http, path: str, headers, limit: int) -> list[list[str]]:
    """The ids on each page of a list, following next_cursor with a fixed limit."""
    pages: list[list[str]] = []
    cursor = None
    while True:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page = await http.get(path, params=params, headers=headers)
        assert page.status_code == 200, page.text
        pages.append([item["id"] for item in page.json()["items"]])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return pages


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_subscriptions_and_delivery_log_are_paginated_with_cursors(
    make_gateway, backends: Backends, database: str
) -> None:
    if database == "postgres" and not backends.postgres_admin_url:
        pytest.skip("PostgreSQL is not available")
    url = backends.database_url("gateway", database)
    # Its own database, so exactly these rows; no dispatcher runs, so nothing is sent.
    async with make_gateway(database_url=url) as (app, http):
        headers = await admin(http)
        subs = [(await subscribe(http, headers, PUBLIC, ["members.*"]))["id"] for _ in range(3)]
        assert await walk(http, "/admin/webhooks", headers, 2) == [subs[:0:-1], subs[:1]]
        # Five events of one batch share an event time, two are older: the log pages by
        # (event time, id), so a page boundary inside the tie skips and repeats nothing.
        tied = utcnow()
        events = [
            relay_envelope(JOINED, n=n).model_copy(update={"time": tied - timedelta(seconds=s)})
            for n, s in enumerate([0, 0, 0, 0, 0, 5, 9])
        ]
        for envelope in events:
            assert await app.state.webhook_store.ingest(envelope) == 3  # one per subscription
        path = f"/admin/webhooks/{subs[0]}/deliveries"
        pages = await walk(http, path, headers, 2)
        assert [len(page) for page in pages] == [2, 2, 2, 1]
        log = (await http.get(path, params={"limit": 200}, headers=headers)).json()
        assert log["next_cursor"] is None
        assert [i["id"] for i in log["items"]] == [i for page in pages for i in page]
        keys = [(i["event_time"], i["id"]) for i in log["items"]]
        assert keys == sorted(keys, reverse=True) and len(set(keys)) == 7
        assert {i["event_id"] for i in log["items"]} == {str(e.id) for e in events}
        # Refused: limits out of bounds, and cursors the gateway did not make.
        from servicekit.pagination import encode_cursor

        for bad in (
            {"limit": 0},
            {"limit": 201},
            {"cursor": "%%%"},
            {"cursor": encode_cursor([str(uuid.uuid4()), tied.isoformat()])},  # swapped
            {"cursor": encode_cursor([tied.isoformat()])},  # one value short
        ):
            for list_path in (path, "/admin/webhooks"):
                response = await http.get(list_path, params=bad, headers=headers)
                assert response.status_code == 422, (list_path, bad, response.text)
                assert response.headers["content-type"] == "application/problem+json"


async def test_webhook_admin_validation(client: httpx.AsyncClient) -> None:
    headers = await admin(client)
    bad = [
        {"url": "ftp://x", "event_types": ["*"]},
        {"url": PUBLIC, "event_types": []},
        {"url": PUBLIC, "event_types": ["Bad Type"]},
        {"url": PUBLIC, "event_types": ["*"], "secret": "short"},
    ]
    for body in bad:
        assert (await client.post("/admin/webhooks", json=body, headers=headers)).status_code == 422
    missing = uuid.uuid4()
    assert (await client.delete(f"/admin/webhooks/{missing}", headers=headers)).status_code == 404
    rolled = await client.post(f"/admin/webhooks/{missing}/secret", headers=headers)
    assert rolled.status_code == 404
    sub = await subscribe(client, headers, PUBLIC, ["*"])
    too_long = await client.post(
        f"/admin/webhooks/{sub['id']}/secret",
        json={"previous_valid_seconds": 8 * 86_400},
        headers=headers,
    )
    assert too_long.status_code == 422
    now = utcnow().isoformat()
    inverted = await client.post(
        f"/admin/webhooks/{sub['id']}/replay", json={"since": now, "until": now}, headers=headers
    )
    assert inverted.status_code == 422
    assert (await client.delete(f"/admin/webhooks/{sub['id']}", headers=headers)).status_code == 204


# --------------------------------------------------------------------------- SSRF

REFUSED_TARGETS = [
    "http://127.0.0.1:8001/internal/accounts/verify",  # loopback: a service's own port
    "http://localhost:8001/",  # a name that resolves to loopback
    "http://127.1/",  # a short form of 127.0.0.1
    "http://10.0.0.5/hook",  # private (the cluster network)
    "http://172.16.3.4/",
    "http://192.168.1.10/",
    "http://169.254.169.254/latest/meta-data/",  # the cloud metadata service (link-local)
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped loopback
    "http://[fd00::1]/",  # IPv6 unique local
    "http://[fe80::1]/",  # IPv6 link-local
    "http://0.0.0.0:8000/",  # unspecified
    "http://224.0.0.1/",  # multicast
    "http://100.64.0.1/",  # carrier-grade NAT: not globally routable
    "http://240.0.0.1/",  # reserved
]


def test_address_policy() -> None:
    assert address_refusal("127.0.0.1") == "loopback"
    assert address_refusal("169.254.169.254") == "link-local"
    assert address_refusal("10.1.2.3") == "private"
    assert address_refusal("::ffff:10.1.2.3") == "private"
    assert address_refusal("64:ff9b::a9fe:a9fe") == "link-local"  # NAT64 of 169.254.169.254
    assert address_refusal("0.0.0.0") == "unspecified"
    assert address_refusal("239.1.1.1") == "multicast"
    assert address_refusal("1.1.1.1") is None
    assert address_refusal("2606:4700:4700::1111") is None


async def test_private_targets_refused_at_creation(client: httpx.AsyncClient) -> None:
    """The shared test gateway runs with webhook_allow_private_targets off (environment test)."""
    headers = await admin(client)
    for url in REFUSED_TARGETS:
        response = await client.post(
            "/admin/webhooks", json={"url": url, "event_types": ["*"]}, headers=headers
        )
        assert response.status_code == 422, (url, response.text)
        assert response.json()["type"] == "urn:hearth:problem:webhook-target-refused", url
    for url in ("file:///etc/passwd", "gopher://1.1.1.1/", "http:///nohost"):
        response = await client.post(
            "/admin/webhooks", json={"url": url, "event_types": ["*"]}, headers=headers
        )
        assert response.status_code == 422, (url, response.text)
    sub = await subscribe(client, headers, PUBLIC, ["*"])
    moved = await client.patch(
        f"/admin/webhooks/{sub['id']}",
        json={"url": "http://169.254.169.254/latest/"},
        headers=headers,
    )
    assert moved.status_code == 422 and "link-local" in moved.json()["detail"]
    listed = await subscriptions(client, headers)
    assert next(s for s in listed if s["id"] == sub["id"])["url"] == PUBLIC
    assert not any(s["url"] in REFUSED_TARGETS for s in listed)


async def test_delivery_checks_the_address_actually_connected_to(
    make_gateway, webhook_settings, receiver: Receiver, nats_client, subject_prefix, tmp_path
) -> None:
    """Subscriptions made while private targets were allowed (or whose DNS changed since):
    once the guard is on, nothing reaches them: an IP literal is checked before the request,
    a name through the resolver that filters what DNS answers."""
    with pytest.raises(OSError, match="refused"):
        await PublicOnlyResolver().resolve("localhost", 80)
    database = {"database_url": f"sqlite:///{tmp_path}/ssrf.db"}
    by_name = receiver.url.replace("127.0.0.1", "localhost")
    async with make_gateway(**webhook_settings, **database) as (_, http):
        headers = await admin(http)
        subs = [
            await subscribe(http, headers, url, ["members.*"]) for url in (receiver.url, by_name)
        ]
    guarded = {**webhook_settings, "webhook_allow_private_targets": False}
    async with make_gateway(**guarded, **database) as (_, http):
        headers = await admin(http)
        await Broker(nats_client, subject_prefix).publish(relay_envelope(JOINED, a=1))

        async def refused() -> list[dict[str, Any]]:
            logs = []
            for sub in subs:
                page = await http.get(f"/admin/webhooks/{sub['id']}/deliveries", headers=headers)
                items = page.json()["items"]
                if not items or "refused" not in (items[0]["last_error"] or ""):
                    return []
                logs.append(items[0])
            return logs

        logs = await eventually(refused)
    assert receiver.requests == 0
    assert "127.0.0.1 is a loopback address" in logs[0]["last_error"]
    assert "localhost refused" in logs[1]["last_error"]


# --------------------------------------------------------------------------- secrets at rest


async def database_text(database_file: Path) -> str:
    """Every value of every table of the gateway database, read directly, as one text."""
    engine = create_async_engine(async_url(f"sqlite:///{database_file}"))
    try:
        async with engine.connect() as conn:
            meta = MetaData()
            await conn.run_sync(meta.reflect)
            dump = []
            for table in meta.sorted_tables:
                rows = (await conn.execute(select(table))).all()
                dump += [repr(tuple(row)) for row in rows]
    finally:
        await engine.dispose()
    return "\n".join(dump)


def keyring_in(key_file: Path) -> Keyring:
    """The keyring a key file holds."""
    return Keyring.from_json(key_file.read_text())


def drop_key(key_file: Path, kid: str) -> None:
    """Remove a retired key from the keyring file."""
    doc = json.loads(key_file.read_text())
    del doc["keys"][kid]
    key_file.write_text(json.dumps(doc))


async def stored_ciphertexts(database_file: Path) -> dict[str, str]:
    """Subscription id -> the secret column as stored."""
    engine = create_async_engine(async_url(f"sqlite:///{database_file}"))
    try:
        async with engine.connect() as conn:
            meta = MetaData()
            await conn.run_sync(meta.reflect, only=["webhook_subscriptions"])
            table = meta.tables["webhook_subscriptions"]
            rows = (await conn.execute(select(table.c.id, table.c.secret_encrypted))).all()
    finally:
        await engine.dispose()
    return {str(uuid.UUID(str(r.id))): r.secret_encrypted for r in rows}


def database_bytes(database_file: Path) -> bytes:
    """The SQLite file and its write-ahead log, as stored on disk."""
    parts = [database_file, database_file.with_name(database_file.name + "-wal")]
    return b"".join(p.read_bytes() for p in parts if p.exists())


async def test_secrets_are_encrypted_at_rest_and_roll_with_a_grace_period(
    make_gateway, webhook_settings, receiver: Receiver, nats_client, subject_prefix, tmp_path
) -> None:
    broker = Broker(nats_client, subject_prefix)
    database_file = tmp_path / "secrets.db"
    database = {"database_url": f"sqlite:///{database_file}"}
    keyring = keyring_in(webhook_settings["webhook_secret_keys_file"])
    async with make_gateway(**webhook_settings, **database) as (_, http):
        headers = await admin(http)
        sub = await subscribe(http, headers, receiver.url, ["members.*"])
        other = await subscribe(http, headers, PUBLIC, ["events.*"])
        generated = other.pop("secret")
        listed = await subscriptions(http, headers)
        assert generated.startswith("whsec_") and "secret" not in str(listed)
        text = await database_text(database_file)
        for plaintext in (SECRET, generated):
            assert plaintext not in text
            assert plaintext.encode() not in database_bytes(database_file)
        ciphertext = (await stored_ciphertexts(database_file))[sub["id"]]
        assert ciphertext.startswith(f"v1.{keyring.active_kid}.")
        # The ciphertext opens with the key and this subscription's id, and only with both.
        assert keyring.decrypt(ciphertext, context=sub["id"]) == SECRET
        with pytest.raises(DecryptionError):
            keyring.decrypt(ciphertext, context=other["id"])
        with pytest.raises(DecryptionError):
            Keyring.generate(keyring.active_kid).decrypt(ciphertext, context=sub["id"])

        # Roll: a new secret, shown once; the old one keeps signing for the grace period.
        rolled = await http.post(f"/admin/webhooks/{sub['id']}/secret", headers=headers)
        assert rolled.status_code == 200, rolled.text
        new_secret = rolled.json()["secret"]
        assert new_secret != SECRET and rolled.json()["previous_secret_expires_at"]
        assert new_secret not in await database_text(database_file)
        await broker.publish(relay_envelope(JOINED, a=1))

        async def one() -> bool:
            return len(receiver.accepted) == 1

        await eventually(one)
        first = receiver.accepted[0]
        assert first["signature"].count("v1=") == 2
        assert receiver_verifies(new_secret, first["signature"], first["body"])
        assert receiver_verifies(SECRET, first["signature"], first["body"])  # old still works

        # Without a grace period the old secret stops signing at once.
        again = await http.post(
            f"/admin/webhooks/{sub['id']}/secret",
            json={"secret": "whsec_chosen_by_the_receiver_0001", "previous_valid_seconds": 0},
            headers=headers,
        )
        assert again.status_code == 200 and again.json()["previous_secret_expires_at"] is None
        await broker.publish(relay_envelope(JOINED, a=2))

        async def two() -> bool:
            return len(receiver.accepted) == 2

        await eventually(two)
        second = receiver.accepted[1]
        assert second["signature"].count("v1=") == 1
        assert receiver_verifies(
            "whsec_chosen_by_the_receiver_0001", second["signature"], second["body"]
        )
        assert not receiver_verifies(new_secret, second["signature"], second["body"])


async def test_key_rotation_re_encrypts_every_secret(
    make_gateway, webhook_settings, receiver: Receiver, nats_client, subject_prefix, tmp_path
) -> None:
    key_file: Path = webhook_settings["webhook_secret_keys_file"]
    old_kid = keyring_in(key_file).active_kid
    database_file = tmp_path / "rotate.db"
    database = {"database_url": f"sqlite:///{database_file}"}
    async with make_gateway(**webhook_settings, **database) as (_, http):
        sub = await subscribe(http, await admin(http), receiver.url, ["members.*"])
    new_kid = add_key(key_file, activate=True)  # rolled out with the old key still listed
    async with make_gateway(**webhook_settings, **database) as (_, http):
        headers = await admin(http)
        first = await http.post("/admin/webhooks/rotate-secrets-key", headers=headers)
        assert first.status_code == 200 and first.json() == {"rewritten": 1, "unreadable": 0}
        second = await http.post("/admin/webhooks/rotate-secrets-key", headers=headers)
        assert second.json() == {"rewritten": 0, "unreadable": 0}
    assert (await stored_ciphertexts(database_file))[sub["id"]].startswith(f"v1.{new_kid}.")
    # The old key can go now: deliveries are still signed with the same secret.
    drop_key(key_file, old_kid)
    async with make_gateway(**webhook_settings, **database) as (_, http):
        await Broker(nats_client, subject_prefix).publish(relay_envelope(JOINED, a=1))

        async def delivered() -> bool:
            return len(receiver.accepted) == 1

        await eventually(delivered)
        assert receiver.accepted[0]["signed"]
    # A keyring that lost the key: the secret is reported unreadable, not silently skipped.
    stranger = tmp_path / "stranger.json"
    add_key(stranger)
    lost = {**webhook_settings, "webhook_secret_keys_file": stranger, "webhooks_enabled": False}
    async with make_gateway(**lost, **database) as (_, http):
        response = await http.post("/admin/webhooks/rotate-secrets-key", headers=await admin(http))
        assert response.json() == {"rewritten": 0, "unreadable": 1}


# --------------------------------------------------------------------------- disable → notice


async def test_auto_disable_notifies_the_creator_in_members(
    make_gateway,
    webhook_settings,
    receiver: Receiver,
    launch,
    identities: Identities,
    nats_client,
    subject_prefix: str,
) -> None:
    """Receiver always failing → subscription disabled → gateway.webhook.disabled.v1 from the
    gateway's outbox → members' `members__gateway` consumer → the admin's inbox."""
    # Imported here: only this test needs members (the rest of the file runs without it).
    from hearth_members.app import definition as members_definition

    members = await launch(members_definition)
    broker = Broker(nats_client, subject_prefix)
    settings = {**webhook_settings, "webhook_disable_after_failures": 2}
    tokened = receiver.url.replace("http://", "http://hook:pw@") + "?token=s3cr3t-in-query"
    async with make_gateway(**settings) as (_, http):
        headers = await admin(http)
        sub = await subscribe(http, headers, tokened, ["events.*"])
        receiver.fail_next = 1_000
        await broker.publish(relay_envelope("hearth.events.activity.published.v1", a=1))

        async def noticed() -> list[dict[str, Any]]:
            inbox = await members.client.get(
                "/me/notifications", headers=identities.headers(ADMIN, "admin")
            )
            assert inbox.status_code == 200, inbox.text
            return [n for n in inbox.json()["items"] if n["kind"] == "webhook.disabled"]

        notices = await eventually(noticed, timeout=20)
        listed = await subscriptions(http, headers)
        assert next(s for s in listed if s["id"] == sub["id"])["status"] == "disabled"
    origin = receiver.url.removesuffix("/hook")
    assert len(notices) == 1
    assert notices[0]["data"]["subscription_id"] == sub["id"]
    assert notices[0]["data"]["url_origin"] == origin and origin in notices[0]["body"]
    assert notices[0]["data"]["failure_streak"] == 2
    events = await broker.read(f"{subject_prefix}.gateway.webhook.disabled.v1")
    assert len(events) == 1 and events[0].source == "/hearth/gateway"
    data = events[0].data
    assert data["created_by"] == str(ADMIN) and data["url_origin"] == origin
    assert "s3cr3t" not in json.dumps(data) and "pw@" not in json.dumps(data)
    assert data["reason"] == "2 consecutive failed deliveries (last: HTTP 503)"
