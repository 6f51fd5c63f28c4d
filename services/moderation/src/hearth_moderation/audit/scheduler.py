"""The chain head, announced periodically (`moderation.audit.chain_head.v1`)."""

from __future__ import annotations

from hearth_moderation.audit.service import publish_head
from hearth_moderation.settings import ModerationSettings
from servicekit.deps import UnitOfWork
from servicekit.periodic import periodic
from servicekit.runtime import ServiceRuntime, settings_of


def _interval(runtime: ServiceRuntime) -> float:
    return settings_of(runtime, ModerationSettings).audit_head_interval_seconds


async def head_pass(runtime: ServiceRuntime) -> str | None:
    """Announce the head if it moved and no replica announced it during this interval."""
    async with runtime.db.session() as session:
        event = await publish_head(UnitOfWork(session, runtime), interval=_interval(runtime))
    return None if event is None else f"announced the audit chain head at {event.seq}"


audit_head_loop = periodic("moderation-audit-head", head_pass, interval=_interval)
