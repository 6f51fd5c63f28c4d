"""Fresh test databases cloned from a migrated template instead of migrated one by one.

Migrating a service from its first revision costs about a second of CPU (Alembic loads and runs
every revision); the suites start a service with a fresh database several hundred times. Each
test process therefore migrates one template per service and backend, and a fresh database is
a copy of it: `CREATE DATABASE … TEMPLATE` on PostgreSQL, a file copy on SQLite.

Two ways in: `Backends.database_url(name, migrations=dir)` creates the database as a clone
directly, and `migrate_fresh` (what `running_service` calls) skips databases made that way and
clones any other database the test backends created that is still empty (PostgreSQL databases
named `hearth_t…`, SQLite files that do not exist yet or are empty). A database that already
has tables is migrated with Alembic as before, so tests of the migration path still run it.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import tempfile
import threading
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from servicekit.db import is_sqlite
from servicekit.migrations import upgrade

_lock = threading.Lock()
_templates: dict[tuple[str, str], str] = {}  # (migrations dir, server) -> template db / file
_at_head: set[tuple[str, str]] = set()  # (migrations dir, url) cloned from a template
_tmp = Path(tempfile.mkdtemp(prefix="hearth-templates-"))


def clone_sqlite(migrations_dir: Path, path: Path) -> None:
    """Write a migrated copy of the service's template database to `path`."""
    with _lock:
        key = (str(migrations_dir), "sqlite")
        template = _templates.get(key)
        if template is None:
            template = str(_tmp / f"{_digest(migrations_dir)}.db")
            upgrade(migrations_dir, f"sqlite:///{template}")
            _templates[key] = template
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, path)
    _at_head.add((str(migrations_dir), f"sqlite:///{path}"))


async def clone_postgres(migrations_dir: Path, url: str, *, replace: bool = False) -> None:
    """Create the database of `url` as a copy of the service's migrated template."""
    await asyncio.to_thread(_clone_postgres_sync, migrations_dir, url, replace)


def _clone_postgres_sync(migrations_dir: Path, url: str, replace: bool) -> None:
    # One lock for the process: a clone must not overlap the template's own migration
    # (PostgreSQL refuses to copy a database someone is connected to).
    with _lock:
        asyncio.run(_clone_postgres(migrations_dir, make_url(url), replace))
    _at_head.add((str(migrations_dir), url))


async def _clone_postgres(migrations_dir: Path, url: URL, replace: bool) -> None:
    import asyncpg

    name = url.database or ""
    admin_dsn = _dsn(url.set(database="postgres"))
    key = (str(migrations_dir), f"{url.host}:{url.port}")
    template = _templates.get(key)
    admin = await asyncpg.connect(admin_dsn)
    try:
        if template is None:
            # Under the database's session prefix (`hearth_t<session>_…`): the session's
            # clean-up drops every database with that prefix, the templates too.
            template = "_".join(name.split("_")[:2]) + f"_tpl_{_digest(migrations_dir)}"
            await admin.execute(f'DROP DATABASE IF EXISTS "{template}"')
            await admin.execute(f'CREATE DATABASE "{template}"')
            template_url = url.set(database=template).render_as_string(hide_password=False)
            await asyncio.to_thread(upgrade, migrations_dir, template_url)
            _templates[key] = template
        if replace:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await admin.close()


async def migrate_fresh(migrations_dir: Path, database_url: str) -> None:
    """Bring a test database to head: nothing if cloned, a clone if fresh, else Alembic."""
    if (str(migrations_dir), database_url) in _at_head:
        return
    if is_sqlite(database_url):
        database = make_url(database_url).database
        path = Path(database) if database and database != ":memory:" else None
        if path is not None and (not path.exists() or path.stat().st_size == 0):
            await asyncio.to_thread(clone_sqlite, migrations_dir, path)
            return
    elif (make_url(database_url).database or "").startswith("hearth_t") and await _empty(
        database_url
    ):
        await clone_postgres(migrations_dir, database_url, replace=True)
        return
    await asyncio.to_thread(upgrade, migrations_dir, database_url)


async def _empty(database_url: str) -> bool:
    import asyncpg

    conn = await asyncpg.connect(_dsn(make_url(database_url)))
    try:
        tables = await conn.fetchval(
            "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
        )
    finally:
        await conn.close()
    return not tables


def _dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _digest(migrations_dir: Path) -> str:
    return hashlib.sha256(str(migrations_dir).encode()).hexdigest()[:8]
