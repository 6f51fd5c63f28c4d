"""Graceful shutdown of a real `hearth-gateway serve` process on SIGTERM, with requests in flight.

Kubernetes sends SIGTERM and waits terminationGracePeriodSeconds. The gateway must stop taking
connections, finish the proxied requests it has started (here: held by a slow upstream started
in the test), stop its webhook consumer, dispatcher and relay, and exit 0. Its log output is
checked too: no access-log line with the raw target, so no query string and no secret path
segment, only the gateway's own request lines (route, status, duration, request id).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from hearth_gateway.webhooks import CONSUMER
from servicekit.events import stream_name
from servicekit.testing.backends import free_port
from servicekit.testing.harness import Broker, eventually, relay_envelope
from servicekit.testing.processes import spawn_logged, wait_until_ok

IN_FLIGHT = 5
SLOW_SECONDS = 2.0
SECRET_PATH = "inv-s3cr3t-path-token"
SECRET_QUERY = "s3cr3t-query-value"


def slow_upstream(state: dict[str, Any]) -> FastAPI:
    """members' stand-in: every call takes SLOW_SECONDS; /hook receives webhooks."""
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> JSONResponse:
        state["hooks"].append(request.headers["hearth-event-id"])
        return JSONResponse({"ok": True})

    @app.get("/quick")
    async def quick() -> JSONResponse:
        return JSONResponse({"quick": True})

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def slow(path: str) -> JSONResponse:
        state["arrived"] += 1
        await asyncio.sleep(SLOW_SECONDS)
        state["finished"] += 1
        return JSONResponse({"path": path})

    return app


async def test_sigterm_finishes_in_flight_requests_exits_zero_and_logs_no_query(
    server_thread, nats_url: str, subject_prefix: str, nats_client: Any, tmp_path: Path
) -> None:
    state: dict[str, Any] = {"arrived": 0, "finished": 0, "hooks": []}
    broker = Broker(nats_client, subject_prefix)
    await broker.publish(relay_envelope("hearth.members.member.joined.v1", n=0))  # the stream
    port = free_port()
    with server_thread(slow_upstream(state)) as upstream:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
        env.update(
            {
                "HEARTH_GATEWAY_ENVIRONMENT": "test",
                "HEARTH_GATEWAY_UPSTREAMS": json.dumps({"members": upstream.url}),
                "HEARTH_GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path}/gateway.db",
                "HEARTH_GATEWAY_WEBHOOKS_ENABLED": "true",
                "HEARTH_GATEWAY_WEBHOOK_CONTEXTS": '["members"]',
                "HEARTH_GATEWAY_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
                "HEARTH_GATEWAY_WEBHOOK_POLL_SECONDS": "0.1",
                "HEARTH_NATS_URL": nats_url,
                "HEARTH_SUBJECT_PREFIX": subject_prefix,
                "HEARTH_LOG_FORMAT": "json",
                "HEARTH_LOG_LEVEL": "INFO",
            }
        )
        log_path = tmp_path / "gateway.log"
        binary = str(Path(sys.executable).parent / "hearth-gateway")
        proc = spawn_logged(
            [binary, "serve", "--port", str(port)], env=env, cwd=tmp_path, log_path=log_path
        )
        base = f"http://127.0.0.1:{port}"
        try:
            await wait_until_ok(proc, base + "/healthz", log_path)
            deadline = time.monotonic() + 30
            async with httpx.AsyncClient(base_url=base, timeout=15) as http:
                admin = await http.post(
                    "/auth/token", json={"username": "admin", "password": "hearth-admin"}
                )
                headers = {"Authorization": f"Bearer {admin.json()['access_token']}"}
                created = await http.post(
                    "/admin/webhooks",
                    json={"url": f"{upstream.url}/hook", "event_types": ["members.*"]},
                    headers=headers,
                )
                assert created.status_code == 201, created.text
                event = relay_envelope("hearth.members.member.joined.v1", n=1)
                await broker.publish(event)

                async def hooked() -> bool:
                    return str(event.id) in state["hooks"]

                await eventually(hooked)  # the webhook consumer and dispatcher are running

                quick = await http.get("/api/members/quick", headers=headers)
                assert quick.status_code == 200, quick.text
                target = f"/api/members/invites/{SECRET_PATH}/redeem?token={SECRET_QUERY}"
                calls = [
                    asyncio.create_task(
                        http.get(target, headers={**headers, "X-Request-ID": f"held-{n}"})
                    )
                    for n in range(IN_FLIGHT)
                ]
                while state["arrived"] < IN_FLIGHT:  # all of them are at the upstream now
                    assert time.monotonic() < deadline + 30, state
                    await asyncio.sleep(0.02)
                started = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                await asyncio.sleep(0.5)
                # Draining: new connections are refused while the held requests still run.
                refused = False
                try:
                    async with httpx.AsyncClient(base_url=base) as fresh:
                        await fresh.get("/healthz", timeout=2)
                except httpx.TransportError:
                    refused = True
                responses = await asyncio.gather(*calls)
            code = await asyncio.to_thread(proc.wait, 20)
            elapsed = time.monotonic() - started
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    logs = log_path.read_text()
    assert code == 0, logs[-3000:]
    assert elapsed < 15, f"took {elapsed:.1f}s to stop"
    assert [r.status_code for r in responses] == [200] * IN_FLIGHT, logs[-3000:]
    assert state["finished"] == IN_FLIGHT and refused
    # The webhook consumer acknowledged what it took before stopping: nothing left in flight.
    info = await nats_client.jetstream().consumer_info(
        stream_name(subject_prefix, "members"), CONSUMER
    )
    assert info.num_ack_pending == 0 and info.num_pending == 0, info

    lines = [json.loads(line) for line in logs.splitlines() if line.strip()]
    assert lines and all({"time", "level", "logger", "message"} <= doc.keys() for doc in lines)
    assert SECRET_QUERY not in logs and SECRET_PATH not in logs  # nowhere in any line
    assert not any(doc["level"] in ("ERROR", "CRITICAL") for doc in lines), logs[-3000:]
    assert not any(doc["logger"] == "uvicorn.access" for doc in lines)
    requests = [doc for doc in lines if doc["logger"] == "hearth.access"]
    assert requests and not any("?" in doc["message"] for doc in requests)
    held = [d for d in requests if d.get("request_id", "").startswith("held-")]
    assert len(held) == IN_FLIGHT
    for doc in held:  # method, route, status, duration, request id: nothing else of the target
        method, route, status, duration, *ids = doc["message"].split()
        assert (method, route, status) == ("GET", "/api/members", "200")
        assert duration.endswith("ms") and float(duration[:-2]) >= SLOW_SECONDS * 1000 * 0.9
        assert f"request_id={doc['request_id']}" in ids
        assert all(i.startswith(("request_id=", "trace_id=")) for i in ids)
    # No X-Request-ID from the client: the line carries the id the gateway made and answered,
    # on its own routes and on proxied calls alike.
    for response, line in (
        (created, "POST /admin/webhooks 201 "),
        (quick, "GET /api/members 200 "),
    ):
        made = response.headers.get("x-request-id")
        assert made, response.headers
        assert any(
            d["message"].startswith(line) and d.get("request_id") == made for d in requests
        ), (made, [d for d in requests if d["message"].startswith(line)])
    assert any("Shutting down" in doc["message"] for doc in lines)
