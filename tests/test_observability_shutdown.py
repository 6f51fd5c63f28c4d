"""Graceful shutdown of a real `hearth-members serve` process on SIGTERM, mid-load.

Kubernetes sends SIGTERM and waits terminationGracePeriodSeconds. The process must stop taking
connections, finish every request it has started, stop its consumers and relay, and exit 0.
Requests held open mid-body when SIGTERM arrives prove "in flight" deterministically; a
concurrent stream of ordinary requests proves nothing is half-done: every row in the database
belongs to a request that got its 201.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from servicekit.db import Database
from servicekit.events import stream_name
from servicekit.testing.backends import Backends, free_port
from servicekit.testing.harness import Identities
from servicekit.testing.processes import spawn_logged, wait_until_ok

OPERATOR = uuid.UUID("00000000-0000-7000-8000-000000000001")


def _body(i: int) -> bytes:
    return json.dumps({"name": f"Shutdown circle {i}", "kind": "internal"}).encode()


async def _held_request(port: int, identity: str, i: int) -> tuple[Any, Any, bytes]:
    """Send the headers and half the body now; the rest later (the request is in flight)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = _body(i)
    head = (
        f"POST /communities HTTP/1.1\r\nHost: members\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-Hearth-Identity: {identity}\r\n\r\n"
    ).encode()
    writer.write(head + body[: len(body) // 2])
    await writer.drain()
    return reader, writer, body[len(body) // 2 :]


async def _finish(reader: Any, writer: Any, rest: bytes) -> int:
    writer.write(rest)
    await writer.drain()
    response = await asyncio.wait_for(reader.read(), 15)  # the server closes after responding
    writer.close()
    return int(response.split(b" ", 2)[1])


async def _load(port: int, identities: Identities, stop: asyncio.Event, out: dict) -> None:
    """Ordinary requests, one connection each, until the server stops accepting."""
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as client:
        i = 0
        while not stop.is_set():
            i += 1
            try:
                r = await client.post(
                    "/communities",
                    content=_body(10_000 + i),
                    headers={
                        **identities.headers(OPERATOR, "operator"),
                        "content-type": "application/json",
                    },
                    timeout=15,
                )
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as exc:
                # Refused, or reset while still queued in the listen backlog: never processed
                # (the database count below proves it), which a client may retry.
                out["refused"].append(type(exc).__name__)
                if out["signalled"]:
                    return
                await asyncio.sleep(0.01)
                continue
            out["statuses"].append(r.status_code)


async def _count(url: str, sql: str) -> int:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            return int((await conn.execute(text(sql))).scalar_one())
    finally:
        await db.dispose()


async def test_sigterm_mid_load_finishes_in_flight_requests_and_exits_zero(
    backends: Backends,
    nats_url: str,
    subject_prefix: str,
    identities: Identities,
    nats_client: Any,
    tmp_path: Path,
) -> None:
    database_url = backends.database_url("members")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    env.update(
        {
            "HEARTH_ENVIRONMENT": "test",
            "HEARTH_NATS_URL": nats_url,
            "HEARTH_SUBJECT_PREFIX": subject_prefix,
            "HEARTH_MEMBERS_DATABASE_URL": database_url,
            "HEARTH_IDENTITY_PUBLIC_KEY": identities.public_pem,
            "HEARTH_LOG_FORMAT": "json",
            "HEARTH_LOG_LEVEL": "INFO",
            "HEARTH_RELAY_POLL_SECONDS": "0.2",
        }
    )
    log_path = tmp_path / "members.log"
    binary = str(Path(sys.executable).parent / "hearth-members")
    proc = spawn_logged(
        [binary, "serve", "--migrate", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        log_path=log_path,
    )
    try:
        await wait_until_ok(proc, f"http://127.0.0.1:{port}/readyz", log_path)

        out: dict[str, Any] = {"statuses": [], "refused": [], "signalled": False}
        stop = asyncio.Event()
        workers = [asyncio.create_task(_load(port, identities, stop, out)) for _ in range(8)]
        deadline = time.monotonic() + 15
        while len(out["statuses"]) < 10:  # under load: requests are flowing
            assert time.monotonic() < deadline, out
            await asyncio.sleep(0.05)
        identity = identities.headers(OPERATOR, "operator")["x-hearth-identity"]
        held = [await _held_request(port, identity, i) for i in range(5)]
        await asyncio.sleep(0.2)  # the server has parsed their headers: they are in flight
        assert len(out["statuses"]) > 0, out

        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out["signalled"] = True
        await asyncio.sleep(0.5)  # shutdown has begun; the held requests are still open
        held_statuses = await asyncio.gather(*(_finish(*h) for h in held))
        stop.set()
        await asyncio.wait_for(asyncio.gather(*workers), 20)

        code = await asyncio.to_thread(proc.wait, 20)
        elapsed = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    logs = log_path.read_text()
    assert code == 0, logs[-3000:]
    assert elapsed < 15, f"took {elapsed:.1f}s to stop"
    assert held_statuses == [201] * 5, (held_statuses, logs[-3000:])
    assert out["statuses"] and set(out["statuses"]) == {201}, out
    # Nothing half-done: every community in the database got its 201.
    created = await _count(database_url, "SELECT count(*) FROM communities")
    assert created == len(out["statuses"]) + len(held_statuses)
    # The relay drained or left the rest in the outbox (the source of truth): nothing lost.
    rows = await _count(database_url, "SELECT count(*) FROM outbox")
    pending = await _count(database_url, "SELECT count(*) FROM outbox WHERE published_at IS NULL")
    info = await nats_client.jetstream().stream_info(stream_name(subject_prefix, "members"))
    assert info.state.messages + pending == rows
    # Structured logs: every line is one JSON object (uvicorn's own lines included).
    lines = [line for line in logs.splitlines() if line.strip()]
    assert lines
    for line in lines:
        doc = json.loads(line)
        assert {"time", "level", "logger", "message", "service"} <= doc.keys()
    assert any("Shutting down" in json.loads(line)["message"] for line in lines)


async def test_stopping_a_runtime_lets_the_consumer_finish_the_message_in_hand(
    any_database_url: str, nats_url: str, subject_prefix: str, nats_client: Any
) -> None:
    import dataclasses

    from sqlalchemy import func, select

    import kitapp
    from servicekit.consumer import EventConsumer
    from servicekit.runtime import ServiceRuntime
    from servicekit.testing.harness import eventually, test_settings

    started = asyncio.Event()
    slow = EventConsumer("kittest__slow")

    @slow.handles("hearth.kittest.note.written.v1")
    async def on_note(session: Any, envelope: Any) -> None:
        started.set()
        await asyncio.sleep(1.0)  # mid-message when the stop comes
        session.add(kitapp.NoteSeen(note_id=uuid.UUID(envelope.data["note_id"])))

    definition = dataclasses.replace(kitapp.definition, consumers=[slow])
    settings = test_settings(
        definition, database_url=any_database_url, nats_url=nats_url, subject_prefix=subject_prefix
    )
    runtime = ServiceRuntime(definition, settings)
    async with runtime.db.engine.begin() as conn:
        await conn.run_sync(kitapp.metadata.create_all)
    await runtime.start()
    try:
        async with runtime.db.session() as session:
            note = kitapp.NoteWritten(note_id=uuid.uuid4(), text="slow")
            await runtime.outbox.record(session, note, subject="slow")
            await session.commit()
        runtime.relay.wake()
        await asyncio.wait_for(started.wait(), 15)
    finally:
        await runtime.stop()  # what the lifespan does on SIGTERM
    # The handler ran to the end and committed its effect with the inbox row...
    check = Database(any_database_url)
    try:
        async with check.session() as session:
            seen = await session.execute(select(func.count()).select_from(kitapp.NoteSeen))
            assert seen.scalar_one() == 1
    finally:
        await check.dispose()

    # ...and acknowledged it: nothing pending or in flight on the durable consumer.
    async def acked() -> bool:
        info = await nats_client.jetstream().consumer_info(
            stream_name(subject_prefix, "kittest"), "kittest__slow"
        )
        assert info.num_ack_pending == 0 and info.num_pending == 0, info
        return True

    await eventually(acked, timeout=5)
