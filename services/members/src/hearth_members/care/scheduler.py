"""The care scheduler: a background loop of the members service that ticks the journeys."""

from __future__ import annotations

from hearth_members.care.service import tick
from hearth_members.settings import MembersSettings
from servicekit.ids import utcnow
from servicekit.periodic import periodic
from servicekit.runtime import ServiceRuntime, settings_of


async def _care_pass(runtime: ServiceRuntime) -> str | None:
    done = await tick(runtime, now=utcnow())
    if done.follow_ups or done.lapsed:
        return f"{done.follow_ups} follow-ups, {done.lapsed} lapsed"
    return None


care_scheduler = periodic(
    "care_scheduler",
    _care_pass,
    interval=lambda rt: settings_of(rt, MembersSettings).care_tick_seconds,
)
