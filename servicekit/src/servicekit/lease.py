"""Leader lease so that exactly one replica runs a singleton loop (the outbox relay, schedulers).

PostgreSQL: a session-level advisory lock held on a dedicated connection; if the holder dies,
PostgreSQL releases the lock and another replica takes over. SQLite is single-node by nature,
so the lease is always held there.
"""

from __future__ import annotations

import hashlib
import logging
import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.db import Database

log = logging.getLogger(__name__)


class Lease:
    """An advisory-lock lease named by a string; `held()` acquires or confirms it."""

    CHECK_EVERY_SECONDS = 5.0

    def __init__(self, db: Database, name: str) -> None:
        self.db = db
        self.name = name
        digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
        self.key = int.from_bytes(digest, "big", signed=True)
        self._conn: AsyncConnection | None = None
        self._checked = 0.0

    async def held(self) -> bool:
        """True if this process holds the lease (acquiring it if free)."""
        if self.db.is_sqlite:
            return True
        now = time.monotonic()
        if self._conn is not None:
            if now - self._checked < self.CHECK_EVERY_SECONDS:
                return True
            try:
                await self._conn.execute(text("SELECT 1"))
                self._checked = now
                return True
            except Exception:
                log.warning("lease %s lost its connection", self.name)
                await self._drop()
        conn = await self.db.engine.connect()
        try:
            got = await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key})
            await conn.commit()
        except Exception:
            await conn.close()
            raise
        if got:
            self._conn, self._checked = conn, now
            log.info("lease %s acquired", self.name)
            return True
        await conn.close()
        return False

    async def _drop(self) -> None:
        if self._conn is not None:
            try:
                await self._conn.close()
            except Exception:
                pass
            self._conn = None

    async def release(self) -> None:
        """Give the lease up (on shutdown)."""
        if self._conn is not None:
            try:
                await self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                await self._conn.commit()
            except Exception:
                pass
            await self._drop()
