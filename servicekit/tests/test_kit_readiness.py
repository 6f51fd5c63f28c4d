"""/readyz on a real kit service: ready only with the database at this release's schema and NATS.

The kit service runs here with real Alembic migrations (tests/kit_migrations: its own branch
plus the kernel's), started without the harness's migrate-first, so each test decides how far
the database has been migrated.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

import kitapp
from servicekit.app import create_service_app
from servicekit.db import Database
from servicekit.migrations import Revisions, revisions, upgrade, upgrade_async
from servicekit.runtime import ServiceRuntime
from servicekit.testing.backends import free_port
from servicekit.testing.harness import Identities, test_settings

PROBLEM = "application/problem+json"
MIGRATED = dataclasses.replace(
    kitapp.definition, migrations_dir=Path(__file__).parent / "kit_migrations"
)
HEADS = {"kittest_0001", "servicekit_0001"}


@asynccontextmanager
async def serving(
    database_url: str, nats_url: str, prefix: str, identities: Identities
) -> AsyncIterator[tuple[ServiceRuntime, httpx.AsyncClient]]:
    """The migrated kit service, started on the database as it is (no migration first)."""
    settings = test_settings(
        MIGRATED,
        database_url=database_url,
        nats_url=nats_url,
        subject_prefix=prefix,
        identity_public_key=identities.public_pem,
    )
    app = create_service_app(MIGRATED, settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://kit") as client:
            yield app.state.runtime, client


async def _sql(url: str, statement: str) -> None:
    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql(statement)
    finally:
        await db.dispose()


def test_heads_include_the_kernel_branch() -> None:
    found = revisions(MIGRATED.migrations_dir)
    assert found.heads == HEADS
    assert found.compare(HEADS) == "ok"
    assert found.compare(set()) == "behind"
    assert found.compare({"servicekit_0001"}) == "behind"
    assert found.compare({"servicekit_0001", "kittest_0002"}) == "ahead"


def test_a_revision_of_ours_below_a_head_is_behind_even_next_to_newer_ones() -> None:
    two = Revisions(heads=frozenset({"a2", "k1"}), known=frozenset({"a1", "a2", "k1"}))
    assert two.compare({"a1", "k1"}) == "behind"
    assert two.compare({"a1", "k2"}) == "behind"  # the kernel moved on, our branch did not
    assert two.compare({"a3", "k1"}) == "ahead"


async def test_ready_at_the_heads_and_still_ready_once_a_newer_release_migrated(
    any_database_url: str, nats_url: str, subject_prefix: str, identities: Identities
) -> None:
    await upgrade_async(MIGRATED.migrations_dir, any_database_url)
    async with serving(any_database_url, nats_url, subject_prefix, identities) as (runtime, client):
        await runtime.nats.wait_connected(15)
        r = await client.get("/readyz")
        assert r.status_code == 200, r.text
        assert r.json()["checks"] == {"database": "ok", "nats": "ok", "schema": "ok"}
        # The next release's migration Job ran before its rollout: this pod keeps serving.
        await _sql(
            any_database_url,
            "UPDATE alembic_version SET version_num = 'kittest_0002' "
            "WHERE version_num = 'kittest_0001'",
        )
        r = await client.get("/readyz")
        assert r.status_code == 200 and r.json()["checks"]["schema"] == "ahead", r.text


@pytest.mark.parametrize("migrated_to", [None, "servicekit@head"])
async def test_not_ready_while_the_schema_is_behind(
    any_database_url: str,
    nats_url: str,
    subject_prefix: str,
    identities: Identities,
    migrated_to: str | None,
) -> None:
    if migrated_to:  # only the kernel's branch: the service's own tables are missing
        await asyncio.to_thread(upgrade, MIGRATED.migrations_dir, any_database_url, migrated_to)
    async with serving(any_database_url, nats_url, subject_prefix, identities) as (runtime, client):
        await runtime.nats.wait_connected(15)
        r = await client.get("/readyz")
        assert r.status_code == 503 and r.headers["content-type"] == PROBLEM, r.text
        body = r.json()
        assert body["checks"] == {"database": "ok", "nats": "ok", "schema": "behind"}
        assert "hearth-kittest migrate" in body["detail"]
        # Once the migration has run, the same pod becomes ready (no restart needed).
        await upgrade_async(MIGRATED.migrations_dir, any_database_url)
        r = await client.get("/readyz")
        assert r.status_code == 200, r.text


async def test_not_ready_while_nats_is_unreachable(
    fresh_database: Any, subject_prefix: str, identities: Identities
) -> None:
    url = fresh_database("kit")
    await upgrade_async(MIGRATED.migrations_dir, url)
    dead = f"nats://127.0.0.1:{free_port()}"  # nothing listens there
    async with serving(url, dead, subject_prefix, identities) as (runtime, client):
        r = await client.get("/readyz")
        assert r.status_code == 503 and r.headers["content-type"] == PROBLEM, r.text
        assert r.json()["checks"] == {"database": "ok", "nats": "down", "schema": "ok"}
        assert not runtime.nats.connected


async def test_not_ready_while_the_database_is_unreachable(
    nats_url: str, subject_prefix: str, identities: Identities
) -> None:
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/hearth"  # nothing listens there
    async with serving(dead, nats_url, subject_prefix, identities) as (runtime, client):
        await runtime.nats.wait_connected(15)
        r = await client.get("/readyz")
        assert r.status_code == 503 and r.headers["content-type"] == PROBLEM, r.text
        assert r.json()["checks"] == {"database": "down", "nats": "ok", "schema": "unknown"}
