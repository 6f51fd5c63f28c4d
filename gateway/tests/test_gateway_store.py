"""The gateway database on the primary test backend (PostgreSQL when present): the migration
(matching the models), refresh-token rotation with reuse detection under concurrency, and API
keys."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from hearth_gateway.main import MIGRATIONS_DIR
from hearth_gateway.models import metadata
from hearth_gateway.store import ApiKeyStore, RefreshRefused, RefreshStore
from servicekit.db import Database, async_url
from servicekit.migrations import KERNEL_TABLES, upgrade_async
from servicekit.testing.backends import Backends


@pytest.fixture
async def db(backends: Backends) -> AsyncIterator[Database]:
    url = backends.database_url("gateway")
    await upgrade_async(MIGRATIONS_DIR, url)
    database = Database(url)
    yield database
    await database.dispose()


async def test_concurrent_use_of_one_refresh_token_rotates_once(db: Database) -> None:
    store = RefreshStore(db, ttl_seconds=60)
    grant = await store.start(subject=uuid.uuid4(), roles=frozenset({"member"}), name="n")
    results = await asyncio.gather(
        *(store.rotate(grant.refresh_token) for _ in range(4)), return_exceptions=True
    )
    winners = [r for r in results if not isinstance(r, Exception)]
    assert len(winners) <= 1
    assert all(isinstance(r, RefreshRefused) for r in results if isinstance(r, Exception))
    if winners:  # the others were reuse: the family is revoked, the winner's token too
        with pytest.raises(RefreshRefused):
            await store.rotate(winners[0].refresh_token)


async def test_expired_refresh_token_refused(db: Database) -> None:
    store = RefreshStore(db, ttl_seconds=1)
    grant = await store.start(subject=uuid.uuid4(), roles=frozenset(), name=None)
    await asyncio.sleep(1.1)
    with pytest.raises(RefreshRefused, match="expired"):
        await store.rotate(grant.refresh_token)


async def test_api_key_round_trip(db: Database) -> None:
    store = ApiKeyStore(db)
    record, plaintext = await store.create(
        name="erp", scopes=frozenset({"events:read"}), created_by=uuid.uuid4()
    )
    found = await store.authenticate(plaintext)
    assert found is not None and found.id == record.id and found.scopes == {"events:read"}
    assert await store.authenticate(plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")) is None
    await store.revoke(record.id)
    assert await store.authenticate(plaintext) is None


async def test_migrations_match_the_models(backends: Backends) -> None:
    """The gateway's branch plus the kernel's (its outbox) build exactly its metadata."""
    url = backends.database_url("gwmig")
    await upgrade_async(MIGRATIONS_DIR, url)
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as conn:

            def diff(sync_conn):  # type: ignore[no-untyped-def]
                ctx = MigrationContext.configure(sync_conn, opts={"compare_type": False})
                return compare_metadata(ctx, metadata), set(inspect(sync_conn).get_table_names())

            changes, tables = await conn.run_sync(diff)
    finally:
        await engine.dispose()
    assert KERNEL_TABLES <= tables  # the outbox the gateway publishes through
    assert changes == [], f"run scripts/regen_migration.sh gateway: {changes}"
