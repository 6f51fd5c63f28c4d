"""The evidence purge: evidence past its community's retention, under no legal hold, goes."""

from __future__ import annotations

from hearth_moderation.evidence.service import purge
from hearth_moderation.settings import ModerationSettings
from servicekit.deps import UnitOfWork
from servicekit.periodic import periodic
from servicekit.runtime import ServiceRuntime, settings_of


async def purge_pass(runtime: ServiceRuntime) -> str | None:
    """Delete what retention allows (safe on several replicas: each row is deleted once)."""
    settings = settings_of(runtime, ModerationSettings)
    async with runtime.db.session() as session:
        count = await purge(
            UnitOfWork(session, runtime), default_days=settings.evidence_retention_days
        )
    return f"purged {count} pieces of evidence" if count else None


evidence_purge_loop = periodic(
    "moderation-evidence-purge",
    purge_pass,
    interval=lambda rt: settings_of(rt, ModerationSettings).evidence_purge_interval_seconds,
)
