"""The scheduled publisher: a background loop of the content service that releases due posts."""

from __future__ import annotations

from hearth_content.service import publish_due
from hearth_content.settings import ContentSettings
from servicekit.ids import utcnow
from servicekit.periodic import periodic
from servicekit.runtime import ServiceRuntime, settings_of


async def _publish_pass(runtime: ServiceRuntime) -> str | None:
    published = await publish_due(runtime, now=utcnow())
    return f"{published} posts published" if published else None


scheduled_publisher = periodic(
    "scheduled_publisher",
    _publish_pass,
    interval=lambda rt: settings_of(rt, ContentSettings).publish_tick_seconds,
)
