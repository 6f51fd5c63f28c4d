"""The request log of a real `hearth-events serve` process: route templates, never raw paths.

A path segment can be a secret (an invite token) and a query string can carry personal data
(`?email=`), so uvicorn's access log is off and servicekit logs each request with its route
template, status, duration, request id and trace id.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx

from servicekit.testing.backends import Backends, free_port
from servicekit.testing.harness import Identities
from servicekit.testing.processes import spawn_logged, wait_until_ok

OPERATOR = uuid.UUID("00000000-0000-7000-8000-000000000001")


async def test_requests_are_logged_by_route_template_without_secrets(
    backends: Backends, nats_url: str, subject_prefix: str, identities: Identities, tmp_path: Path
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    env.update(
        {
            "HEARTH_ENVIRONMENT": "test",
            "HEARTH_NATS_URL": nats_url,
            "HEARTH_SUBJECT_PREFIX": subject_prefix,
            "HEARTH_EVENTS_DATABASE_URL": backends.database_url("events"),
            "HEARTH_IDENTITY_PUBLIC_KEY": identities.public_pem,
            "HEARTH_LOG_FORMAT": "json",
            "HEARTH_LOG_LEVEL": "INFO",
        }
    )
    log_path = tmp_path / "events.log"
    binary = str(Path(sys.executable).parent / "hearth-events")
    proc = spawn_logged(
        [binary, "serve", "--migrate", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        log_path=log_path,
    )
    token = secrets.token_urlsafe(24)  # a path secret
    hidden_id = uuid.uuid4()  # a path value that must not show either
    email = f"someone.{secrets.token_hex(4)}@example.com"
    trace_id = secrets.token_hex(16)
    ids = {name: f"req-{name}-{secrets.token_hex(4)}" for name in ("redeem", "lookup", "get")}
    try:
        await wait_until_ok(proc, f"http://127.0.0.1:{port}/readyz", log_path)
        staff = identities.headers(OPERATOR, "operator")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            r = await client.post(
                f"/invites/{token}/redeem", headers={**staff, "x-request-id": ids["redeem"]}
            )
            assert r.status_code == 404  # not an events route: still logged, still no path
            r = await client.get(
                "/activities",
                params={"community_id": str(uuid.uuid4()), "email": email},
                headers={**staff, "x-request-id": ids["lookup"]},
            )
            assert r.status_code == 200, r.text
            r = await client.get(
                f"/activities/{hidden_id}",
                headers={
                    **staff,
                    "x-request-id": ids["get"],
                    "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01",
                },
            )
            assert r.status_code == 404, r.text
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    text = log_path.read_text()
    assert code == 0, text[-3000:]
    for secret in (token, str(hidden_id), email, email.replace("@", "%40"), "email="):
        assert secret not in text, f"{secret!r} leaked into the logs:\n{text[-3000:]}"
    records = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert not [r for r in records if r["logger"] == "uvicorn.access"]
    access: dict[str, dict[str, Any]] = {
        r["request_id"]: r for r in records if r["logger"] == "hearth.access" and "request_id" in r
    }
    assert set(ids.values()) <= set(access), records
    expected = {
        "redeem": ("POST", "<unmatched>", 404),
        "lookup": ("GET", "/activities", 200),
        "get": ("GET", "/activities/{activity_id}", 404),
    }
    for name, (method, route, status) in expected.items():
        line = access[ids[name]]
        http = line["http"]
        assert (http["method"], http["route"], http["status"]) == (method, route, status), line
        assert http["duration_ms"] >= 0
        assert line["message"].startswith(f"{method} {route} {status} "), line
        assert line["message"].endswith(f"ms request_id={ids[name]}"), line
        assert len(line["trace_id"]) == 32, line
    # The trace id is the one the caller's traceparent carried (the request joined its trace).
    assert access[ids["get"]]["trace_id"] == trace_id
