"""The care scheduler: a background loop of the members service that ticks the journeys."""

from __future__ import annotations

import asyncio
import logging

from hearth_members.care.service import tick
from servicekit.ids import utcnow
from servicekit.runtime import ServiceRuntime

log = logging.getLogger(__name__)
DEFAULT_TICK_SECONDS = 30.0


async def care_scheduler(runtime: ServiceRuntime) -> None:
    """Tick every `care_tick_seconds` until cancelled; a failing tick is logged and retried."""
    interval = float(getattr(runtime.settings, "care_tick_seconds", DEFAULT_TICK_SECONDS))
    while True:
        try:
            done = await tick(runtime, now=utcnow())
            if done.follow_ups or done.lapsed:
                log.info("care tick: %d follow-ups, %d lapsed", done.follow_ups, done.lapsed)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("care tick failed; retrying next interval")
        await asyncio.sleep(interval)
