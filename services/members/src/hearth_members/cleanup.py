"""The cleanup loop: removes members whose notice period has ended (idempotent across replicas)."""

from __future__ import annotations

from hearth_members.lifecycle import run_due_removals
from servicekit.deps import UnitOfWork
from servicekit.periodic import periodic
from servicekit.runtime import ServiceRuntime

INTERVAL_SECONDS = 30.0


async def _cleanup_pass(runtime: ServiceRuntime) -> str | None:
    """Remove the members whose removal is due (each claimed with SKIP LOCKED)."""
    async with runtime.db.session() as session:
        removed = await run_due_removals(uow=UnitOfWork(session, runtime))
    return f"removed {removed} members after their notice period" if removed else None


cleanup_loop = periodic(
    "cleanup_loop",
    _cleanup_pass,
    interval_setting="cleanup_interval_seconds",
    default_seconds=INTERVAL_SECONDS,
)
