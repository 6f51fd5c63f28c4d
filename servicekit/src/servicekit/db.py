"""Async database engine and sessions for SQLite (dev default) and PostgreSQL (production)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import Session
from sqlmodel.ext.asyncio.session import AsyncSession


def async_url(url: str) -> str:
    """Map plain `sqlite://` / `postgresql://` URLs to their async drivers."""
    parsed = make_url(url)
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    """True for SQLite URLs."""
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    """An async engine tuned for the backend (SQLite: WAL, busy_timeout, FKs, IMMEDIATE txns)."""
    url = async_url(url)
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
        _tune_sqlite(engine)
        return engine
    return create_async_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )


def _tune_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from the driver so BEGIN IMMEDIATE can be issued:
        # a deferred transaction that reads and then writes fails with SQLITE_BUSY at once
        # (busy_timeout does not apply to lock upgrades), which would surface as a 500.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


_COMMIT_HOOKS = "hearth.commit_hooks"


def on_commit(session: AsyncSession, hook: Callable[[], None]) -> None:
    """Run `hook` once this session's transaction commits; never if it rolls back.

    For sessions of a `Database` (its session class runs the hooks), e.g. a consumer handler
    waking a sender only once the rows it wrote are visible to it.
    """
    session.sync_session.info.setdefault(_COMMIT_HOOKS, []).append(hook)


class Database:
    """An engine, its session factory, and hooks that run after every commit."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = async_url(url)
        self.engine = create_engine(self.url, pool_size=pool_size)
        self.after_commit: list[Callable[[Session], None]] = []
        # Copied into every session's `info`: lets consumer handlers, which get only a session,
        # reach process-wide objects such as the service runtime (see runtime.runtime_of).
        self.session_info: dict[str, Any] = {}

        class _Session(Session):
            pass

        # This database's own session class: `listen()` hooks reach its sessions and no others
        # (several services share one process in tests).
        self.session_class = _Session

        @event.listens_for(_Session, "after_commit")
        def _run_hooks(session: Session) -> None:
            for hook in self.after_commit:
                hook(session)
            for once in session.info.pop(_COMMIT_HOOKS, []):
                once()

        @event.listens_for(_Session, "after_soft_rollback")
        def _drop_hooks(session: Session, _previous: Any) -> None:
            session.info.pop(_COMMIT_HOOKS, None)  # rolled back: nothing happened to announce

        self.sessions = async_sessionmaker(
            self.engine,
            class_=AsyncSession,
            sync_session_class=_Session,
            expire_on_commit=False,
            info=self.session_info,
        )

    def listen(self, name: str, fn: Callable[..., Any]) -> None:
        """Register a session event hook (e.g. `before_flush`) on this database's sessions only."""
        event.listen(self.session_class, name, fn)

    @property
    def is_sqlite(self) -> bool:
        """True when this database is SQLite."""
        return is_sqlite(self.url)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session; the caller commits, anything uncommitted is rolled back on exit."""
        async with self.sessions() as session:
            yield session

    async def ping(self) -> None:
        """Raise unless the database answers."""
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def upsert_insert(session: AsyncSession, table: Any) -> Any:
    """An INSERT that supports `.on_conflict_do_update/nothing` on PostgreSQL and SQLite alike."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def affected_rows(result: Any) -> int:
    """How many rows an INSERT/UPDATE/DELETE touched (its CursorResult's rowcount).

    `Session.execute` is typed as returning a plain Result, which has no rowcount; conditional
    UPDATEs that settle races read it, so it is read here once, typed.
    """
    return int(getattr(result, "rowcount", 0) or 0)
