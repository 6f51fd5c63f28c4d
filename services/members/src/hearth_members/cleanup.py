"""The cleanup loop: removes members whose notice period has ended (idempotent across replicas)."""

from __future__ import annotations

from hearth_members.lifecycle import run_due_removals
from hearth_members.settings import MembersSettings
from servicekit.deps import UnitOfWork
from servicekit.periodic import periodic
from servicekit.runtime import ServiceRuntime, settings_of


async def _cleanup_pass(runtime: ServiceRuntime) -> str | None:
    """Remove the members whose removal is due (each claimed with SKIP LOCKED)."""
    async with runtime.db.session() as session:
        removed = await run_due_removals(uow=UnitOfWork(session, runtime))
    return f"removed {removed} members after their notice period" if removed else None


cleanup_loop = periodic(
    "cleanup_loop",
    _cleanup_pass,
    interval=lambda rt: settings_of(rt, MembersSettings).cleanup_interval_seconds,
)
