"""The scheduled publisher: a background loop of the content service that releases due posts."""

from __future__ import annotations

import asyncio
import logging

from hearth_content.service import publish_due
from servicekit.ids import utcnow
from servicekit.runtime import ServiceRuntime

log = logging.getLogger(__name__)


async def scheduled_publisher(runtime: ServiceRuntime) -> None:
    """Publish due calendar slots every `publish_tick_seconds`; a failing pass is retried."""
    interval = float(getattr(runtime.settings, "publish_tick_seconds", 5.0))
    while True:
        try:
            published = await publish_due(runtime, now=utcnow())
            if published:
                log.info("scheduled publisher: %d posts published", published)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("scheduled publishing pass failed; retrying next interval")
        await asyncio.sleep(interval)
