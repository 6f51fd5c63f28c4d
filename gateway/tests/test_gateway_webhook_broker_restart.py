"""Webhook ingest survives a broker crash: the NATS server is SIGKILLed and restarted from its
store while a subscription is active, and the next event published is still delivered; also
when the server comes back without its store (a lost volume: streams and durables gone).

A private nats-server per test (never the machine's shared one): the ingest runs on the kernel's
consumer, which rebinds its pull subscriptions when the connection comes back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func, select

from hearth_gateway import models
from hearth_gateway.webhook_keys import add_key
from hearth_gateway.webhooks import CONSUMER, INGEST_ACK_WAIT_SECONDS
from servicekit.events import stream_name
from servicekit.testing.backends import Backends, free_port, start_nats_server
from servicekit.testing.harness import Broker, eventually, relay_envelope

JOINED = "hearth.members.member.joined.v1"
# From the restarted server accepting connections to the event at the receiver.
DELIVERED_WITHIN_SECONDS = 20.0


@pytest.fixture
def accepted(server_thread) -> Iterator[tuple[str, list[str]]]:
    """A local receiver: (its URL, the event ids it accepted, in arrival order)."""
    ids: list[str] = []
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> JSONResponse:
        await request.body()
        ids.append(request.headers["hearth-event-id"])
        return JSONResponse({"ok": True})

    with server_thread(app) as server:
        yield f"{server.url}/hook", ids


async def _token(http) -> dict[str, str]:
    response = await http.post(
        "/auth/token", json={"username": "admin", "password": "hearth-admin"}
    )
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def _publish(url: str, prefix: str, **data: Any) -> str:
    """Publish one event as a relay would, on a connection of its own (the server may be new)."""
    client = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        envelope = relay_envelope(JOINED, **data)
        await Broker(client, prefix).publish(envelope)
        return str(envelope.id)
    finally:
        await client.close()


@pytest.mark.parametrize("store_after", ["kept", "lost"])
@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_the_next_event_after_a_sigkilled_broker_returns_is_delivered(
    make_gateway,
    accepted: tuple[str, list[str]],
    subject_prefix: str,
    backends: Backends,
    database: str,
    store_after: str,
    tmp_path: Path,
) -> None:
    if database == "postgres" and not backends.postgres_admin_url:
        pytest.skip("PostgreSQL is not available")
    hook_url, ids = accepted
    key_file = tmp_path / "webhook-secrets.json"
    add_key(key_file)
    port = free_port()
    store = tmp_path / "js"
    proc, url = start_nats_server(store, port)
    settings = {
        "webhooks_enabled": True,
        "nats_url": url,
        "subject_prefix": subject_prefix,
        "webhook_contexts": ["members", "events"],
        # Longer than every wait below: only the wake-up after the ingest commit sends in time.
        "webhook_poll_seconds": 60.0,
        "webhook_secret_keys_file": key_file,
        "webhook_allow_private_targets": True,
        "database_url": backends.database_url("gateway", database),
    }
    try:
        async with make_gateway(**settings) as (app, http):
            created = await http.post(
                "/admin/webhooks",
                json={"url": hook_url, "event_types": ["members.*"]},
                headers=await _token(http),
            )
            assert created.status_code == 201, created.text
            before = await _publish(url, subject_prefix, n=1)

            async def first() -> bool:
                return ids == [before]

            await eventually(first, timeout=15)

            proc.kill()  # SIGKILL: no flush, no goodbye to the gateway's connection
            proc.wait(10)
            await asyncio.sleep(0.5)  # the gateway notices the connection is gone
            if store_after == "lost":  # the consumer must notice and recreate its durable
                store = tmp_path / "js-new"
            proc, _ = start_nats_server(store, port)  # same port, same store unless lost
            back = time.monotonic()
            after = await _publish(url, subject_prefix, n=2)

            async def second() -> bool:
                return ids == [before, after]

            await eventually(second, timeout=DELIVERED_WITHIN_SECONDS)
            took = time.monotonic() - back

            # The durable kept its name and settings across the move to the kernel consumer,
            # and nothing is left unacknowledged on the restarted server (the ack follows the
            # commit, so it may reach the server just after the receiver has the event).
            client = await nats.connect(url)
            try:

                async def settled() -> Any:
                    info = await client.jetstream().consumer_info(
                        stream_name(subject_prefix, "members"), CONSUMER
                    )
                    return info if info.num_pending == info.num_ack_pending == 0 else None

                info = await eventually(settled, timeout=10)
            finally:
                await client.close()
            assert info.config.ack_wait == INGEST_ACK_WAIT_SECONDS
            assert info.config.filter_subject == f"{subject_prefix}.members.>"
            # Both events reached the consumer (the new server's stream holds only the second).
            assert info.delivered.stream_seq == (2 if store_after == "kept" else 1), info
            # The deliveries' unique key makes ingest idempotent: no inbox row per event.
            async with app.state.db.session() as session:
                inbox = (
                    await session.execute(select(func.count()).select_from(models.kit.inbox))
                ).scalar_one()
            assert inbox == 0
    finally:
        proc.kill()
        proc.wait(10)
    print(f"\nwebhook event published after a broker SIGKILL delivered in {took:.2f}s")
    assert ids == [before, after]
