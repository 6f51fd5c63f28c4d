"""The inactivity pass: every community, every `inactivity_tick_seconds`, on every replica.

Safe on several replicas without a leader: each announcement is claimed by inserting its
inactivity mark (primary key), so a member is announced once whichever replica sees it first.
"""

from __future__ import annotations

from hearth_metrics.inactivity.service import detect_all
from hearth_metrics.settings import MetricsSettings
from servicekit.deps import UnitOfWork
from servicekit.ids import utcnow
from servicekit.periodic import periodic
from servicekit.runtime import ServiceRuntime, settings_of


async def run_pass(runtime: ServiceRuntime) -> str | None:
    """Announce newly quiet members; a summary when there were any."""
    settings = settings_of(runtime, MetricsSettings)
    async with runtime.db.session() as session:
        found = await detect_all(UnitOfWork(session, runtime), settings=settings, now=utcnow())
    return f"{found} member(s) announced quiet" if found else None


inactivity_loop = periodic(
    "metrics-inactivity",
    run_pass,
    interval=lambda rt: settings_of(rt, MetricsSettings).inactivity_tick_seconds,
)
