"""The appeals' SLA pass: an alert event for each appeal that waited too long, once."""

from __future__ import annotations

from hearth_moderation.appeals.service import alert_overdue
from hearth_moderation.settings import ModerationSettings
from servicekit.deps import UnitOfWork
from servicekit.periodic import periodic
from servicekit.runtime import ServiceRuntime, settings_of


async def run_sla(runtime: ServiceRuntime) -> str | None:
    """One pass: alert every appeal past its SLA."""
    async with runtime.db.session() as session:
        alerted = await alert_overdue(UnitOfWork(session, runtime))
    return f"{alerted} appeal(s) overdue" if alerted else None


appeal_sla = periodic(
    "appeal_sla",
    run_sla,
    interval=lambda rt: settings_of(rt, ModerationSettings).appeal_tick_seconds,
)
