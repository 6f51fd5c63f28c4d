"""Alembic per service, driven programmatically (no alembic.ini to keep in step).

Every service database has two branches: `servicekit` (the kernel's outbox, inbox, dead letters
and idempotency keys, in servicekit/kernel_migrations) and the service's own, labelled with its
context. A kernel schema change is one revision in the kernel branch, applied everywhere;
autogenerate in a service never sees the kernel's tables.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from servicekit.db import async_url, is_sqlite
from servicekit.types import UtcDateTime

KERNEL_VERSIONS = Path(__file__).parent / "kernel_migrations" / "versions"
KERNEL_TABLES = frozenset({"outbox", "inbox", "dead_letters", "idempotency_keys"})


def alembic_config(migrations_dir: Path, database_url: str, *, kernel: bool = True) -> Config:
    """An Alembic config for one service's migrations (plus the kernel branch) and database."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", async_url(database_url).replace("%", "%%"))
    locations = [migrations_dir / "versions"] + ([KERNEL_VERSIONS] if kernel else [])
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", os.pathsep.join(str(p) for p in locations))
    return config


def upgrade(
    migrations_dir: Path, database_url: str, revision: str = "heads", *, kernel: bool = True
) -> None:
    """Bring the database to a revision (runs in its own event loop: call from a thread)."""
    if is_sqlite(database_url):
        from sqlalchemy.engine import make_url

        database = make_url(database_url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(migrations_dir, database_url, kernel=kernel), revision)


async def upgrade_async(migrations_dir: Path, database_url: str, *, kernel: bool = True) -> None:
    """Upgrade to heads from async code."""
    await asyncio.to_thread(upgrade, migrations_dir, database_url, kernel=kernel)


@dataclass(frozen=True)
class Revisions:
    """A release's migration heads (its own branch and the kernel's) and every revision it has."""

    heads: frozenset[str]
    known: frozenset[str]

    def compare(self, current: Iterable[str]) -> str:
        """`ok`, `behind` (a migration is missing) or `ahead` (a newer release migrated it)."""
        current = frozenset(current)
        if current == self.heads:
            return "ok"
        unknown = current - self.known
        # A revision of ours that is not a head has a descendant this database lacks; heads of
        # ours missing with nothing newer in their place (e.g. never migrated) are missing too.
        if (current & self.known) - self.heads or (self.heads - current and not unknown):
            return "behind"
        # Migrations are backward compatible with the release still running (operations.md,
        # "Deploy"): old pods stay ready while the Job migrates ahead of the new rollout.
        return "ahead"


def revisions(migrations_dir: Path) -> Revisions:
    """The heads and revisions of a service's migrations plus the kernel branch (no database)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(migrations_dir, "sqlite://"))
    return Revisions(
        heads=frozenset(script.get_heads()),
        known=frozenset(r.revision for r in script.walk_revisions()),
    )


async def current_revisions(engine: AsyncEngine) -> frozenset[str]:
    """The revisions a database is at (empty when it was never migrated)."""
    from alembic.migration import MigrationContext

    def read(connection: Connection) -> frozenset[str]:
        return frozenset(MigrationContext.configure(connection).get_current_heads())

    async with engine.connect() as conn:
        return await conn.run_sync(read)


def revision(migrations_dir: Path, database_url: str, message: str, *, branch: str) -> None:
    """Autogenerate the next revision of a service's own branch against a database at heads."""
    from alembic.script import ScriptDirectory

    config = alembic_config(migrations_dir, database_url)
    labels = {
        label
        for script in ScriptDirectory.from_config(config).walk_revisions()
        for label in script.branch_labels
    }
    where: dict[str, Any] = (
        {"head": f"{branch}@head"} if branch in labels else {"head": "base", "branch_label": branch}
    )
    command.revision(
        config,
        message=message,
        autogenerate=True,
        version_path=str(migrations_dir / "versions"),
        **where,
    )


def run_env(metadata: MetaData) -> None:
    """The body of every service's migrations/env.py."""
    from alembic import context

    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None

    def render_item(type_: str, obj: Any, _autogen: Any) -> str | Literal[False]:
        # Migrations stay plain SQLAlchemy: the UTC conversion lives in Python, not the schema.
        if type_ == "type" and isinstance(obj, UtcDateTime):
            return "sa.DateTime(timezone=True)"
        return False

    def include_object(obj: Any, name: str | None, type_: str, *_: Any) -> bool:
        # The kernel's tables belong to the servicekit branch, not to the service's revisions.
        table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
        return table not in KERNEL_TABLES

    def do_run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_item=render_item,
            include_object=include_object,
            render_as_batch=is_sqlite(url),  # SQLite alters tables by copying them
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
        await engine.dispose()

    asyncio.run(run_async())
