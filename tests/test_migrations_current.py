"""Every service's migrations (its own branch plus the kernel's) build exactly its models."""

from __future__ import annotations

import importlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from servicekit.db import async_url
from servicekit.migrations import KERNEL_TABLES, upgrade_async
from servicekit.testing.backends import Backends

CONTEXTS = ["members", "content", "events", "moderation", "metrics"]


def _not_fts(obj, name, type_, *_):  # type: ignore[no-untyped-def]
    # SQLite FTS5 virtual tables (and their shadow tables) are made by raw DDL in a migration:
    # SQLAlchemy has no model for them. Named `*_fts*` so this is the only exception.
    return not (type_ == "table" and name is not None and "_fts" in name)


@pytest.mark.parametrize("context", CONTEXTS)
async def test_migrations_match_the_models(context: str, backends: Backends) -> None:
    definition = importlib.import_module(f"hearth_{context}.app").definition
    url = backends.database_url(f"mig{context}")
    await upgrade_async(definition.migrations_dir, url)
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as conn:

            def diff(sync_conn):  # type: ignore[no-untyped-def]
                ctx = MigrationContext.configure(
                    sync_conn, opts={"compare_type": False, "include_object": _not_fts}
                )
                return compare_metadata(ctx, definition.metadata), set(
                    inspect(sync_conn).get_table_names()
                )

            changes, tables = await conn.run_sync(diff)
    finally:
        await engine.dispose()
    assert KERNEL_TABLES <= tables  # the kernel branch ran
    assert changes == [], f"run scripts/regen_migration.sh {context}: {changes}"
