"""The reminder scheduler: a background loop of the events service that reminds registrants."""

from __future__ import annotations

from datetime import timedelta

from hearth_events.service import remind_due
from hearth_events.settings import EventsSettings
from servicekit.ids import utcnow
from servicekit.periodic import periodic
from servicekit.runtime import ServiceRuntime, settings_of


async def _reminder_pass(runtime: ServiceRuntime) -> str | None:
    lead = timedelta(hours=settings_of(runtime, EventsSettings).reminder_lead_hours)
    sent = await remind_due(runtime, now=utcnow(), lead=lead)
    return f"{sent} reminders due" if sent else None


reminder_scheduler = periodic(
    "reminder_scheduler",
    _reminder_pass,
    interval=lambda rt: settings_of(rt, EventsSettings).reminder_tick_seconds,
)
