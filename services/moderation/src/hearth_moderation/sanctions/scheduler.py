"""The expiry pass: mutes end and warning points lapse by themselves, once across replicas."""

from __future__ import annotations

from hearth_moderation.sanctions.service import expire_due
from hearth_moderation.settings import ModerationSettings
from servicekit.deps import UnitOfWork
from servicekit.periodic import periodic
from servicekit.runtime import ServiceRuntime, settings_of


async def run_expiry(runtime: ServiceRuntime) -> str | None:
    """One pass: end every sanction whose time has come."""
    async with runtime.db.session() as session:
        ended = await expire_due(UnitOfWork(session, runtime))
    return f"{ended} sanction(s) expired" if ended else None


sanction_expiry = periodic(
    "sanction_expiry",
    run_expiry,
    interval=lambda rt: settings_of(rt, ModerationSettings).sanction_tick_seconds,
)
