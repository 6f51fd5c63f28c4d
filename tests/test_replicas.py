"""Two replicas of one service on one PostgreSQL and one NATS: no duplicate effects.

Runs the kernel's test service (`kitapp`: a note write records an event; its own consumer
records one `notes_seen` row per handled event, so a duplicate effect would show as a second
row). PostgreSQL only: the relay lease is an advisory lock; SQLite is single-node by nature.
"""

from __future__ import annotations

import asyncio
import uuid
from contextlib import AsyncExitStack
from typing import Any

import pytest
from sqlalchemy import func, select

import kitapp
from servicekit.events import stream_name
from servicekit.testing.backends import Backends
from servicekit.testing.harness import (
    Identities,
    RunningService,
    eventually,
    running_service,
    test_settings,
)
from servicekit.testing.plugin import unavailable


@pytest.fixture
def pg_url(backends: Backends) -> str:
    if not backends.postgres_admin_url:
        unavailable("replica tests need PostgreSQL (advisory-lock lease); none was found")
    return backends.database_url("replicas", "postgres")


def _settings(url: str, nats_url: str, prefix: str, identities: Identities) -> Any:
    return test_settings(
        kitapp.definition,
        database_url=url,
        nats_url=nats_url,
        subject_prefix=prefix,
        identity_public_key=identities.public_pem,
    )


async def _write(svc: RunningService, identities: Identities, n: int) -> None:
    for i in range(n):
        r = await svc.client.post(
            "/notes", json={"text": f"note {i}"}, headers=identities.headers(uuid.uuid4())
        )
        assert r.status_code == 201, r.text


async def _counts(svc: RunningService) -> dict[str, int]:
    tables = svc.runtime.tables
    async with svc.runtime.db.session() as session:
        out = {
            "outbox": (
                await session.execute(select(func.count()).select_from(tables.outbox))
            ).scalar_one(),
            "unpublished": (
                await session.execute(
                    select(func.count())
                    .select_from(tables.outbox)
                    .where(tables.outbox.c.published_at.is_(None))
                )
            ).scalar_one(),
            "inbox": (
                await session.execute(select(func.count()).select_from(tables.inbox))
            ).scalar_one(),
            "seen": await kitapp.seen_count(session),
            "distinct_seen": (
                await session.execute(select(func.count(func.distinct(kitapp.NoteSeen.note_id))))
            ).scalar_one(),
        }
        await session.commit()
    return out


async def _stream_messages(nats_client: Any, prefix: str) -> int:
    info = await nats_client.jetstream().stream_info(stream_name(prefix, "kittest"))
    return int(info.state.messages)


def _holders(*services: RunningService) -> list[RunningService]:
    return [s for s in services if s.runtime.relay.lease._conn is not None]


async def test_two_replicas_publish_and_consume_each_event_once(
    pg_url: str, nats_url: str, subject_prefix: str, identities: Identities, nats_client: Any
) -> None:
    settings = _settings(pg_url, nats_url, subject_prefix, identities)
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(running_service(kitapp.definition, settings))
        b = await stack.enter_async_context(running_service(kitapp.definition, settings))
        # Both replicas take writes at the same time; both relays poll the one outbox.
        await asyncio.gather(_write(a, identities, 20), _write(b, identities, 20))

        async def settled() -> bool:
            counts = await _counts(a)
            assert counts["unpublished"] == 0, counts
            assert counts["seen"] == 40, counts
            return True

        await eventually(settled, timeout=20)
        counts = await _counts(a)
        # Exactly once on the stream: one message per outbox row (a second publisher would
        # be absorbed by Nats-Msg-Id only within the duplicate window; here there is none).
        assert await _stream_messages(nats_client, subject_prefix) == counts["outbox"] == 40
        # Only the lease holder published.
        assert len(_holders(a, b)) == 1
        published = sorted([a.runtime.relay.published_total, b.runtime.relay.published_total])
        assert published == [0, 40]
        # Both replicas share the durable consumer; each event's effect was applied once.
        assert counts["inbox"] == counts["seen"] == counts["distinct_seen"] == 40
        handled = [c.stats["handled"] for s in (a, b) for c in s.runtime.consumers]
        assert sum(handled) == 40
        await asyncio.sleep(0.5)  # and nothing more arrives late
        assert (await _counts(b))["seen"] == 40


async def test_relay_lease_fails_over_when_the_holder_stops(
    pg_url: str, nats_url: str, subject_prefix: str, identities: Identities, nats_client: Any
) -> None:
    settings = _settings(pg_url, nats_url, subject_prefix, identities)
    async with AsyncExitStack() as outer:
        first = AsyncExitStack()
        a = await first.enter_async_context(running_service(kitapp.definition, settings))
        await _write(a, identities, 3)

        async def a_holds() -> bool:
            assert _holders(a) == [a]
            assert (await _counts(a))["unpublished"] == 0
            return True

        await eventually(a_holds, timeout=15)
        b = await outer.enter_async_context(running_service(kitapp.definition, settings))
        await asyncio.sleep(0.5)
        assert _holders(b) == []  # the lease is taken: b stays quiet
        await first.aclose()  # the holder stops (shutdown releases the advisory lock)

        await _write(b, identities, 5)

        async def b_took_over() -> bool:
            assert _holders(b) == [b]
            counts = await _counts(b)
            assert counts["unpublished"] == 0, counts
            assert counts["seen"] == 8, counts
            return True

        await eventually(b_took_over, timeout=15)
        assert b.runtime.relay.published_total == 5
        assert await _stream_messages(nats_client, subject_prefix) == 8
