"""The reminder scheduler: a background loop of the events service that reminds registrants."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from hearth_events.service import remind_due
from servicekit.ids import utcnow
from servicekit.runtime import ServiceRuntime

log = logging.getLogger(__name__)


async def reminder_scheduler(runtime: ServiceRuntime) -> None:
    """Announce due reminders every `reminder_tick_seconds`; a failing pass is retried."""
    interval = float(getattr(runtime.settings, "reminder_tick_seconds", 30.0))
    lead = timedelta(hours=float(getattr(runtime.settings, "reminder_lead_hours", 24.0)))
    while True:
        try:
            sent = await remind_due(runtime, now=utcnow(), lead=lead)
            if sent:
                log.info("reminder scheduler: %d reminders due", sent)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reminder pass failed; retrying next interval")
        await asyncio.sleep(interval)
