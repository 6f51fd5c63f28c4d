"""The cleanup loop: removes members whose notice period has ended (idempotent across replicas)."""

from __future__ import annotations

import asyncio
import logging

from hearth_members.lifecycle import run_due_removals
from servicekit.deps import UnitOfWork
from servicekit.runtime import ServiceRuntime

log = logging.getLogger(__name__)
INTERVAL_SECONDS = 30.0


async def cleanup_loop(runtime: ServiceRuntime) -> None:
    """Every interval, remove the members whose removal is due (each claimed conditionally)."""
    interval = float(getattr(runtime.settings, "cleanup_interval_seconds", INTERVAL_SECONDS))
    while True:
        try:
            async with runtime.db.session() as session:
                removed = await run_due_removals(uow=UnitOfWork(session, runtime))
            if removed:
                log.info("cleanup removed %d members after their notice period", removed)
        except Exception:  # keep the loop alive; the next round retries
            log.exception("cleanup round failed")
        await asyncio.sleep(interval)
