"""The reminder scheduler: a background loop of the events service that reminds registrants."""

from __future__ import annotations

from datetime import timedelta

from hearth_events.service import remind_due
from servicekit.ids import utcnow
from servicekit.periodic import periodic
from servicekit.runtime import ServiceRuntime


async def _reminder_pass(runtime: ServiceRuntime) -> str | None:
    lead = timedelta(hours=float(getattr(runtime.settings, "reminder_lead_hours", 24.0)))
    sent = await remind_due(runtime, now=utcnow(), lead=lead)
    return f"{sent} reminders due" if sent else None


reminder_scheduler = periodic(
    "reminder_scheduler",
    _reminder_pass,
    interval_setting="reminder_tick_seconds",
    default_seconds=30,
)
