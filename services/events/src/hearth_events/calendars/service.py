"""iCalendar (RFC 5545) feeds with the icalendar library: per activity, per community, personal."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from datetime import timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event
from sqlmodel import col, select

from hearth_events.calendars.models import CalendarToken
from hearth_events.models import Activity, ActivityState, Registration, RegistrationStatus
from hearth_events.service import require_member_or_staff, require_viewer
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.problems import not_found
from servicekit.types import as_utc

FEED_PATH = "/calendar/feeds/{token}.ics"
# Feeds show a month back and everything ahead (bounded): calendar apps poll them.
FEED_PAST = timedelta(days=31)
FEED_LIMIT = 500
# Registrations that put an activity in a member's own calendar.
IN_MY_CALENDAR = (
    RegistrationStatus.confirmed,
    RegistrationStatus.waitlisted,
    RegistrationStatus.pending,
)


def token_hash(token: str) -> str:
    """The stored form of a feed secret."""
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_token(
    *, uow: UnitOfWork, actor: Principal, label: str | None
) -> tuple[CalendarToken, str]:
    """A new personal feed token for the caller: 256 random bits, only its hash is kept."""
    secret = secrets.token_urlsafe(32)
    row = CalendarToken(user_id=actor.subject, token_hash=token_hash(secret), label=label)
    uow.session.add(row)
    await uow.commit()
    return row, secret


async def list_tokens(*, uow: UnitOfWork, actor: Principal) -> list[CalendarToken]:
    """The caller's feed tokens, newest first."""
    stmt = (
        select(CalendarToken)
        .where(CalendarToken.user_id == actor.subject)
        .order_by(col(CalendarToken.id).desc())
        .limit(100)
    )
    return list((await uow.session.exec(stmt)).all())


async def revoke_token(*, uow: UnitOfWork, token_id: uuid.UUID, actor: Principal) -> CalendarToken:
    """Revoke one of the caller's tokens: its URL stops working at once (idempotent)."""
    row = await uow.session.get(CalendarToken, token_id)
    if row is None or row.user_id != actor.subject:
        raise not_found("calendar token", token_id)
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        uow.session.add(row)
        await uow.commit()
    return row


async def activity_feed(*, uow: UnitOfWork, activity_id: uuid.UUID, actor: Principal) -> bytes:
    """One activity as an iCalendar file (whoever may see the activity)."""
    activity = await uow.session.get(Activity, activity_id)
    if activity is None:
        raise not_found("activity", activity_id)
    await require_viewer(uow.session, activity, actor)
    return render([activity], name=activity.title)


async def community_feed(*, uow: UnitOfWork, community_id: uuid.UUID, actor: Principal) -> bytes:
    """A community's activities from a month back (members and staff)."""
    await require_member_or_staff(uow.session, community_id, actor)
    stmt = (
        select(Activity)
        .where(
            Activity.community_id == community_id,
            col(Activity.state) != ActivityState.draft,
            col(Activity.ends_at) >= utcnow() - FEED_PAST,
        )
        .order_by(col(Activity.starts_at), col(Activity.id))
        .limit(FEED_LIMIT)
    )
    return render(list((await uow.session.exec(stmt)).all()), name="Community activities")


async def personal_feed(*, uow: UnitOfWork, token: str) -> bytes:
    """The activities the token's owner registered for; an unknown or revoked token is a 404."""
    stmt = select(CalendarToken).where(CalendarToken.token_hash == token_hash(token))
    row = (await uow.session.exec(stmt)).first()
    if row is None or row.revoked_at is not None:
        raise not_found("calendar feed")
    activities = (
        await uow.session.exec(
            select(Activity)
            .join(Registration, col(Registration.activity_id) == col(Activity.id))
            .where(
                Registration.user_id == row.user_id,
                col(Registration.status).in_(IN_MY_CALENDAR),
                col(Activity.ends_at) >= utcnow() - FEED_PAST,
            )
            .order_by(col(Activity.starts_at), col(Activity.id))
            .limit(FEED_LIMIT)
        )
    ).all()
    return render(list(activities), name="My activities")


def render(activities: Sequence[Activity], *, name: str) -> bytes:
    """RFC 5545 text: one VEVENT per activity, in its own zone (VTIMEZONE added)."""
    cal = Calendar()
    cal.add("prodid", "-//Hearth//events//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", name)
    for activity in activities:
        zone = ZoneInfo(activity.timezone)
        event = Event()
        event.add("uid", f"{activity.id}@hearth-events")
        event.add("dtstamp", as_utc(activity.updated_at or activity.created_at))
        event.add("dtstart", as_utc(activity.starts_at).astimezone(zone))
        event.add("dtend", as_utc(activity.ends_at).astimezone(zone))
        event.add("summary", activity.title)
        if activity.description:
            event.add("description", activity.description)
        where = activity.location or activity.online_url
        if where:
            event.add("location", where)
        if activity.online_url:
            event.add("url", activity.online_url)
        event.add(
            "status", "CANCELLED" if activity.state == ActivityState.cancelled else "CONFIRMED"
        )
        cal.add_component(event)
    cal.add_missing_timezones()
    return cal.to_ical()
