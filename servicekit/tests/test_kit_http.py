"""The kernel's HTTP conventions on a running service: idempotency keys, probes, ops routes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select, update

import kitapp
from servicekit import idempotency
from servicekit.crypto import Keyring
from servicekit.ids import utcnow
from servicekit.testing.harness import Identities, RunningService, running_service, test_settings

PROBLEM = "application/problem+json"


@pytest.fixture
async def kit(
    any_database_url: str, nats_url: str, subject_prefix: str, identities: Identities
) -> AsyncIterator[RunningService]:
    settings = test_settings(
        kitapp.definition,
        database_url=any_database_url,
        nats_url=nats_url,
        subject_prefix=subject_prefix,
        identity_public_key=identities.public_pem,
    )
    async with running_service(kitapp.definition, settings) as service:
        yield service


async def _counts(kit: RunningService) -> tuple[int, int]:
    async with kit.runtime.db.session() as session:
        notes = (await session.execute(select(func.count()).select_from(kitapp.Note))).scalar_one()
        events = (
            await session.execute(select(func.count()).select_from(kit.runtime.tables.outbox))
        ).scalar_one()
    return notes, events


async def test_idempotency_key_replays_the_first_response(
    kit: RunningService, identities: Identities
) -> None:
    headers = {**identities.headers(uuid.uuid4()), "idempotency-key": "k-1"}
    first = await kit.client.post("/notes", json={"text": "once"}, headers=headers)
    again = await kit.client.post("/notes", json={"text": "once"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert await _counts(kit) == (1, 1)
    reused = await kit.client.post("/notes", json={"text": "different"}, headers=headers)
    assert reused.status_code == 422 and reused.headers["content-type"] == PROBLEM
    assert reused.json()["type"].endswith("idempotency-key-reused")
    # Keys belong to their caller: another user's same key is a new request.
    other = {**identities.headers(uuid.uuid4()), "idempotency-key": "k-1"}
    assert (
        await kit.client.post("/notes", json={"text": "once"}, headers=other)
    ).status_code == 201
    assert await _counts(kit) == (2, 2)


async def test_concurrent_retries_with_one_key_make_one_effect(
    kit: RunningService, identities: Identities
) -> None:
    headers = {**identities.headers(uuid.uuid4()), "idempotency-key": "race"}
    responses = await asyncio.gather(
        *(kit.client.post("/notes", json={"text": "race"}, headers=headers) for _ in range(10))
    )
    assert {r.status_code for r in responses} <= {201, 409}
    assert (
        sum(r.status_code == 201 and "idempotent-replayed" not in r.headers for r in responses) == 1
    )
    assert await _counts(kit) == (1, 1)


async def test_invalid_idempotency_key(kit: RunningService, identities: Identities) -> None:
    headers = {**identities.headers(uuid.uuid4()), "idempotency-key": "x" * 201}
    r = await kit.client.post("/notes", json={"text": "t"}, headers=headers)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert await _counts(kit) == (0, 0)


async def test_probes_are_open_everything_else_needs_identity(kit: RunningService) -> None:
    assert (await kit.client.get("/healthz")).json() == {"status": "ok"}
    ready = await kit.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "nats": "ok"}
    for path in ("/admin/outbox", "/admin/dead-letters"):
        r = await kit.client.get(path)
        assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
    r = await kit.client.post("/notes", json={"text": "t"})
    assert r.status_code == 401


async def test_ops_routes_are_for_staff_only(kit: RunningService, identities: Identities) -> None:
    member = identities.headers(uuid.uuid4(), "member")
    operator = identities.headers(uuid.uuid4(), "operator")
    for path in ("/admin/outbox", "/admin/dead-letters"):
        assert (await kit.client.get(path, headers=member)).status_code == 403
        assert (await kit.client.get(path, headers=operator)).status_code == 200
    r = await kit.client.post(f"/admin/dead-letters/{uuid.uuid4()}/replay", headers=member)
    assert r.status_code == 403
    r = await kit.client.post(f"/admin/dead-letters/{uuid.uuid4()}/replay", headers=operator)
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    outbox = (await kit.client.get("/admin/outbox", headers=operator)).json()
    assert set(outbox) == {"pending", "oldest_pending_age_seconds", "published_since_start"}


async def test_a_forged_dead_letters_cursor_is_a_422(
    kit: RunningService, identities: Identities
) -> None:
    from servicekit.pagination import encode_cursor

    operator = identities.headers(uuid.uuid4(), "operator")
    for values in ([5, str(uuid.uuid4())], ["2026-01-01T00:00:00+00:00", 5], ["x"]):
        r = await kit.client.get(
            "/admin/dead-letters", params={"cursor": encode_cursor(values)}, headers=operator
        )
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, values
        assert r.json()["type"] == "urn:hearth:problem:invalid-cursor"


async def test_dead_letter_can_be_inspected_and_replayed(
    kit: RunningService, identities: Identities
) -> None:
    from servicekit.testing.harness import eventually

    operator = identities.headers(uuid.uuid4(), "operator")
    note_id = uuid.uuid4()
    async with kit.runtime.db.session() as session:
        session.add(kitapp.Note(id=note_id, text="poison"))
        await kit.runtime.outbox.record(
            session, kitapp.NoteWritten(note_id=note_id, text="p", poison=True)
        )
        await session.commit()

    async def listed():
        page = (await kit.client.get("/admin/dead-letters", headers=operator)).json()
        return page["items"]

    items = await eventually(listed)
    assert items[0]["consumer"] == "kittest__notes" and "poison" in items[0]["error"]
    # Still poison: replay refuses with a 409 and keeps the letter.
    r = await kit.client.post(f"/admin/dead-letters/{items[0]['id']}/replay", headers=operator)
    assert r.status_code == 409
    assert (await listed())[0]["replayed_at"] is None


async def test_a_retry_sent_as_the_first_response_arrives_is_a_replay(
    kit: RunningService, identities: Identities
) -> None:
    # Over a real socket (uvicorn), so the client sees the response as soon as it is sent; in
    # the old order (send, then store) the retry could find the key still in flight (a 409).
    config = uvicorn.Config(kit.app, host="127.0.0.1", port=0, lifespan="off", log_level="error")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    replays = conflicts = 0
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for n in range(50):
                headers = {**identities.headers(uuid.uuid4()), "idempotency-key": f"retry-{n}"}
                first = await client.post("/notes", json={"text": f"n{n}"}, headers=headers)
                retry = await client.post("/notes", json={"text": f"n{n}"}, headers=headers)
                assert first.status_code == 201 and "idempotent-replayed" not in first.headers
                conflicts += retry.status_code == 409
                replays += (
                    retry.status_code == 201 and retry.headers.get("idempotent-replayed") == "true"
                )
                if retry.status_code == 201:
                    assert retry.json() == first.json()
    finally:
        server.should_exit = True
        await serving
    print(f"immediate retries over a socket: {replays}/50 replayed, {conflicts} got 409")
    assert (replays, conflicts) == (50, 0)
    assert await _counts(kit) == (50, 50)


async def test_stored_responses_are_sealed_and_a_foreign_seal_is_refused(
    kit: RunningService, identities: Identities
) -> None:
    headers = {**identities.headers(uuid.uuid4()), "idempotency-key": "sealed"}
    first = await kit.client.post("/notes", json={"text": "secret-text-42"}, headers=headers)
    assert first.status_code == 201
    table = kit.runtime.tables.idempotency_keys
    async with kit.runtime.db.session() as session:
        stored = (await session.execute(select(table.c.body))).scalar_one()
    assert b"secret-text-42" not in stored and stored.startswith(b"v1.dev.")
    # A process with another key (a restart in development) cannot replay: 409, no 2nd effect.
    kit.runtime.idempotency_keyring = Keyring.generate("dev")
    again = await kit.client.post("/notes", json={"text": "secret-text-42"}, headers=headers)
    assert again.status_code == 409 and again.headers["content-type"] == PROBLEM
    assert again.json()["type"].endswith("idempotency-key-unreadable")
    assert await _counts(kit) == (1, 1)


async def test_the_sweep_deletes_expired_keys_only(
    kit: RunningService, identities: Identities
) -> None:
    table = kit.runtime.tables.idempotency_keys
    for key in ("old", "fresh"):
        headers = {**identities.headers(uuid.uuid4()), "idempotency-key": key}
        assert (
            await kit.client.post("/notes", json={"text": key}, headers=headers)
        ).status_code == 201
    async with kit.runtime.db.session() as session:
        await session.execute(
            update(table)
            .where(table.c.key == "old")
            .values(created_at=utcnow() - idempotency.KEY_TTL - timedelta(minutes=1))
        )
        await session.commit()
        assert await idempotency.sweep_expired(session, kit.runtime.tables) == 1
        await session.commit()
        left = (await session.execute(select(table.c.key))).scalars().all()
    assert left == ["fresh"]
    assert "idempotency-sweep" in {t.get_name() for t in kit.runtime._background}


async def test_forget_deletes_one_principals_keys(
    kit: RunningService, identities: Identities
) -> None:
    gone, kept = uuid.uuid4(), uuid.uuid4()
    for who, key in ((gone, "a"), (gone, "b"), (kept, "a")):
        headers = {**identities.headers(who), "idempotency-key": key}
        assert (
            await kit.client.post("/notes", json={"text": key}, headers=headers)
        ).status_code == 201
    table = kit.runtime.tables.idempotency_keys
    async with kit.runtime.db.session() as session:
        assert await idempotency.forget(session, kit.runtime.tables, gone) == 2
        await session.commit()
        left = (await session.execute(select(table.c.principal))).scalars().all()
    assert left == [kept]


async def test_the_response_is_stored_before_its_first_byte_is_sent(
    kit: RunningService, identities: Identities
) -> None:
    # Over a real socket the retry races the store; here the client's own `send` looks at the
    # store the instant the response starts, so the old order (send, then store) fails every time.
    table = kit.runtime.tables.idempotency_keys
    headers = {**identities.headers(uuid.uuid4()), "idempotency-key": "ordered"}
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    raw.append((b"content-type", b"application/json"))
    seen: list[object] = []
    request = {"type": "http.request", "body": b'{"text": "x"}', "more_body": False}

    async def receive() -> dict[str, object]:
        return request

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start":
            async with kit.runtime.db.session() as session:
                seen.append((await session.execute(select(table.c.status))).scalar_one())

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/notes",
        "raw_path": b"/notes",
        "root_path": "",
        "query_string": b"",
        "headers": raw,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    await kit.app(scope, receive, send)
    assert seen == [201]


async def test_the_runtime_sweeps_expired_keys_on_its_schedule(
    start_kit: Any, any_database_url: str, nats_url: str, subject_prefix: str
) -> None:
    async with start_kit(
        any_database_url, nats_url, subject_prefix, idempotency_sweep_seconds=0.1
    ) as runtime:
        table = runtime.tables.idempotency_keys
        old = utcnow() - idempotency.KEY_TTL - timedelta(minutes=1)
        async with runtime.db.session() as session:
            for key, created in (("expired", old), ("live", utcnow())):
                await session.execute(
                    table.insert().values(
                        principal=uuid.uuid4(), key=key, fingerprint="f", created_at=created
                    )
                )
            await session.commit()
        for _ in range(50):
            async with runtime.db.session() as session:
                left = (await session.execute(select(table.c.key))).scalars().all()
            if left == ["live"]:
                break
            await asyncio.sleep(0.1)
        assert left == ["live"]
