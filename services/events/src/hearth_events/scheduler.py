"""Background loops of the events service: reminders to registrants, series' rolling horizon."""

from __future__ import annotations

from datetime import timedelta

from hearth_events.series.horizon import extend_series
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


async def _series_pass(runtime: ServiceRuntime) -> str | None:
    created = await extend_series(runtime, now=utcnow())
    return f"{created} series occurrences materialized" if created else None


series_scheduler = periodic(
    "series_scheduler",
    _series_pass,
    interval=lambda rt: settings_of(rt, EventsSettings).series_tick_seconds,
)
