"""The business measures' access and privacy: metrics-core's require_reader and privacy floor,
plus the query window in the community's time zone (one helper every business route uses)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_metrics.communities.service import Policy, policy_of
from hearth_metrics.permissions import require_reader
from hearth_metrics.privacy import Floor, aligned, guard
from hearth_metrics.settings import MetricsSettings
from servicekit.identity import Principal
from servicekit.problems import Problem

PeopleFloor = Callable[[int], tuple[int | None, str | None]]
MAX_RANGE_DAYS = 400


def people_floor(floor: Floor) -> PeopleFloor:
    """A count of people through the floor: (count, None) or (None, reason)."""

    def check(people: int) -> tuple[int | None, str | None]:
        fig = guard(float(people), people=people, floor=floor)
        return (people, None) if fig.suppressed is None else (None, fig.suppressed)

    return check


OPEN_FLOOR: PeopleFloor = lambda people: (people, None)  # noqa: E731 - the identity floor


@dataclass(frozen=True)
class Window:
    """A query's community, policy, floor, local days and their UTC instants [since, until)."""

    policy: Policy
    floor: Floor
    people: PeopleFloor
    start: date
    end: date  # inclusive
    since: datetime
    until: datetime


async def reader_window(
    session: AsyncSession,
    principal: Principal,
    community_id: uuid.UUID,
    *,
    what: str,
    settings: MetricsSettings,
    start: date | None,
    end: date | None,
    default_days: int = 28,
) -> Window:
    """Check the reader, then the range: local days, widened to whole ISO weeks in an
    internal community (privacy rule 1), at most MAX_RANGE_DAYS."""
    await require_reader(session, principal, community_id, what=what)
    policy = await policy_of(session, community_id=community_id, settings=settings)
    floor = Floor.of(policy)
    zone = ZoneInfo(policy.time_zone)
    today = datetime.now(zone).date()
    end = end or today
    start = start or end - timedelta(days=default_days - 1)
    if start > end:
        raise Problem(422, "invalid-range", "Invalid range", "start is after end")
    if floor.applies:
        start, end = aligned(start, end, grain="week")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise Problem(
            422, "invalid-range", "Invalid range", f"a range spans at most {MAX_RANGE_DAYS} days"
        )
    since = datetime.combine(start, time(), zone).astimezone(UTC)
    until = datetime.combine(end + timedelta(days=1), time(), zone).astimezone(UTC)
    return Window(policy, floor, people_floor(floor), start, end, since, until)
