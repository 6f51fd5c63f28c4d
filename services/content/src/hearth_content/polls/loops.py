"""The poll closer: a background loop that closes polls whose close time has come."""

from __future__ import annotations

from hearth_content.polls.service import close_due
from hearth_content.settings import ContentSettings
from servicekit.ids import utcnow
from servicekit.periodic import periodic
from servicekit.runtime import ServiceRuntime, settings_of


async def _close_pass(runtime: ServiceRuntime) -> str | None:
    closed = await close_due(runtime, now=utcnow())
    return f"{closed} polls closed" if closed else None


# Same tick as the scheduled publisher: a poll is announced closed at most that much late (it
# refuses votes from its close time on regardless).
poll_closer = periodic(
    "poll_closer",
    _close_pass,
    interval=lambda rt: settings_of(rt, ContentSettings).publish_tick_seconds,
)
