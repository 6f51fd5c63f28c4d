"""Series use cases: materialize occurrences from an RRULE, edit one or this-and-following.

Rules are read by python-dateutil's `rrulestr` against the first start as a *local* wall time
in the series' IANA zone, so "every Tuesday 19:00 Asia/Shanghai" or "the second Thursday of the
month 18:30 Europe/Berlin" stay at that wall time across DST changes; each occurrence is then
stored in UTC with the zone. Only WEEKLY and MONTHLY rules are accepted (BYDAY with an ordinal,
e.g. 2TH or -1FR, is "monthly on a weekday").
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import MONTHLY, WEEKLY, rrule, rrulestr
from sqlmodel import col, select

from hearth_events.models import Activity, ActivityCreate, ActivityState, ActivityUpdate
from hearth_events.series.models import (
    ActivitySeries,
    EditScope,
    OccurrenceEditRequest,
    SeriesCreate,
)
from hearth_events.service import (
    apply_update,
    invalid,
    publish_activity,
    require_manager,
    require_member_or_staff,
)
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.problems import not_found
from servicekit.types import as_utc

MAX_OCCURRENCES = 60
ALLOWED_FREQ = {WEEKLY: "WEEKLY", MONTHLY: "MONTHLY"}
# Fields whose values are instants relative to the start: each occurrence keeps the offset.
RELATIVE = ("registration_opens_at", "registration_closes_at", "cancellation_deadline")


def starts_between(
    rule: str,
    first: datetime,
    zone: str,
    exdates: list[datetime],
    *,
    after: datetime | None,
    until: datetime,
) -> tuple[list[datetime], datetime]:
    """Occurrence starts (UTC) after `after` up to `until`, minus exdates, at most
    MAX_OCCURRENCES; and how far the rule was read (`until`, or the last start when capped)."""
    tz = ZoneInfo(zone)
    local_first = as_utc(first).astimezone(tz).replace(tzinfo=None)
    try:
        parsed = rrulestr(rule.removeprefix("RRULE:"), dtstart=local_first)
    except (ValueError, TypeError) as exc:
        raise invalid("invalid-rrule", f"not an RFC 5545 rule: {exc}") from None
    if not isinstance(parsed, rrule) or parsed._freq not in ALLOWED_FREQ:
        raise invalid("invalid-rrule", "only WEEKLY and MONTHLY rules are supported")
    skip = {as_utc(d) for d in exdates}
    out: list[datetime] = []
    for local in parsed:
        start = local.replace(tzinfo=tz).astimezone(ZoneInfo("UTC"))
        if start > until:
            break
        if (after is not None and start <= after) or start in skip:
            continue
        out.append(start)
        if len(out) >= MAX_OCCURRENCES:
            return out, start
    return out, until


async def create_series(
    *, uow: UnitOfWork, data: SeriesCreate, actor: Principal
) -> tuple[ActivitySeries, list[Activity]]:
    """Create a series and its occurrences (each a published or draft activity)."""
    first = data.activity
    until = as_utc(first.starts_at) + timedelta(days=data.horizon_days)
    starts, until = starts_between(
        data.rrule, first.starts_at, first.timezone, data.exdates, after=None, until=until
    )
    if not starts:
        raise invalid("invalid-rrule", "the rule has no occurrence within the horizon")
    series = ActivitySeries(
        community_id=first.community_id,
        rrule=data.rrule.removeprefix("RRULE:"),
        exdates=[d.isoformat() for d in data.exdates],
        template=first.model_dump(mode="json"),
        timezone=first.timezone,
        horizon_days=data.horizon_days,
        materialized_until=until,
        created_by=actor.subject,
    )
    uow.session.add(series)
    created: list[Activity] = []
    for start in starts:
        # Each occurrence is checked like a single activity (organiser, hosts); one commit.
        created.append(
            await publish_activity(
                uow=uow, data=_shifted(first, start), actor=actor, series_id=series.id, commit=False
            )
        )
    await uow.commit()
    return series, created


def _shifted(first: ActivityCreate, start: datetime) -> ActivityCreate:
    """The first occurrence's body moved to `start` (relative instants move along)."""
    delta = start - first.starts_at
    values: dict[str, Any] = first.model_dump()
    values["starts_at"] = start
    values["ends_at"] = first.ends_at + delta
    for name in RELATIVE:
        if values.get(name) is not None:
            values[name] = values[name] + delta
    return ActivityCreate.model_validate(values)


async def get_series(
    *, uow: UnitOfWork, series_id: uuid.UUID, actor: Principal
) -> tuple[ActivitySeries, list[Activity]]:
    """A series and its occurrences (the community's members and staff)."""
    series = await _series(uow, series_id)
    await require_member_or_staff(uow.session, series.community_id, actor)
    return series, await _occurrences(uow, series_id)


async def edit_occurrence(
    *,
    uow: UnitOfWork,
    series_id: uuid.UUID,
    activity_id: uuid.UUID,
    data: OccurrenceEditRequest,
    actor: Principal,
) -> list[Activity]:
    """Edit one occurrence, or it and every later one still editable (one transaction).

    A changed start or end in a "following" edit moves each later occurrence by the same wall
    clock change in the series' zone (19:00 → 20:00 stays 20:00 across DST).
    """
    await _series(uow, series_id)  # 404 for an unknown series
    anchor = await uow.session.get(Activity, activity_id)
    if anchor is None or anchor.series_id != series_id:
        raise not_found("occurrence", activity_id)
    await require_manager(uow.session, anchor, actor)
    targets = [anchor]
    if data.scope == EditScope.following:
        targets = [
            a
            for a in await _occurrences(uow, series_id)
            if as_utc(a.starts_at) >= as_utc(anchor.starts_at)
            and a.state
            not in (ActivityState.ended, ActivityState.summarized, ActivityState.cancelled)
        ]
    changes = data.changes
    set_fields = changes.model_fields_set
    tz = ZoneInfo(changes.timezone or anchor.timezone)
    start_shift = end_shift = None
    if "starts_at" in set_fields and changes.starts_at is not None:
        start_shift = _wall(changes.starts_at, tz) - _wall(anchor.starts_at, tz)
    if "ends_at" in set_fields and changes.ends_at is not None:
        end_shift = _wall(changes.ends_at, tz) - _wall(anchor.ends_at, tz)
    for activity in targets:
        await uow.session.refresh(activity, with_for_update=True)
        update = changes
        if start_shift is not None or end_shift is not None:
            moved = dict(changes.model_dump(exclude_unset=True))
            moved["starts_at"] = _moved(activity.starts_at, start_shift, tz)
            moved["ends_at"] = _moved(activity.ends_at, end_shift, tz)
            update = ActivityUpdate.model_validate(moved)
        await apply_update(uow=uow, activity=activity, data=update, actor=actor, commit=False)
    await uow.commit()
    return targets


def _wall(value: datetime, tz: ZoneInfo) -> datetime:
    return as_utc(value).astimezone(tz).replace(tzinfo=None)


def _moved(value: datetime, shift: timedelta | None, tz: ZoneInfo) -> datetime:
    if shift is None:
        return as_utc(value)
    return (_wall(value, tz) + shift).replace(tzinfo=tz).astimezone(ZoneInfo("UTC"))


async def _series(uow: UnitOfWork, series_id: uuid.UUID) -> ActivitySeries:
    series = await uow.session.get(ActivitySeries, series_id)
    if series is None:
        raise not_found("series", series_id)
    return series


async def _occurrences(uow: UnitOfWork, series_id: uuid.UUID) -> list[Activity]:
    stmt = (
        select(Activity)
        .where(Activity.series_id == series_id)
        .order_by(col(Activity.starts_at), col(Activity.id))
    )
    return list((await uow.session.exec(stmt)).all())
