"""iCalendar feeds (per activity, per community, personal behind a revocable token) and RRULE
series (weekly and monthly-on-a-weekday, EXDATE, edit one or this-and-following, across DST).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar
from sqlmodel import select

from hearth_events.calendars.models import CalendarToken
from hearth_events.calendars.service import token_hash
from servicekit.ids import utcnow
from servicekit.testing.harness import Identities, RunningService

OPERATOR = uuid.UUID("00000000-0000-7000-8000-000000000001")
BERLIN = ZoneInfo("Europe/Berlin")


def staff(identities: Identities) -> dict[str, str]:
    return identities.headers(OPERATOR, "operator")


def activity_body(community_id: uuid.UUID, starts: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "community_id": str(community_id),
        "title": "Reading circle",
        "kind": "offline_meetup",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=2)).isoformat(),
        "capacity": 5,
        "timezone": "Europe/Berlin",
        "location": "Library, room 2",
        **extra,
    }


def events_of(ics: bytes) -> list[Any]:
    return [c for c in Calendar.from_ical(ics).walk("VEVENT")]


async def test_activity_community_and_personal_feeds(
    events: RunningService, identities: Identities, directory
) -> None:
    community_id, [member, other] = await directory.community(events, members=2)
    stranger = uuid.uuid4()
    starts = (utcnow() + timedelta(days=5)).replace(microsecond=0)
    made = []
    for i in range(2):
        r = await events.client.post(
            "/activities",
            json=activity_body(community_id, starts + timedelta(days=i), title=f"Circle {i}"),
            headers=staff(identities),
        )
        made.append(r.json())
    await events.client.post(
        f"/activities/{made[1]['id']}/registrations", headers=identities.headers(member)
    )

    r = await events.client.get(
        f"/activities/{made[0]['id']}/calendar.ics", headers=identities.headers(member)
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/calendar")
    [event] = events_of(r.content)
    assert str(event["summary"]) == "Circle 0" and str(event["location"]) == "Library, room 2"
    assert event.decoded("dtstart") == starts.astimezone(BERLIN)
    assert str(event["uid"]) == f"{made[0]['id']}@hearth-events"
    assert b"BEGIN:VTIMEZONE" in r.content and b"TZID:Europe/Berlin" in r.content
    r = await events.client.get(
        f"/activities/{made[0]['id']}/calendar.ics", headers=identities.headers(stranger)
    )
    assert r.status_code == 403

    r = await events.client.get(
        f"/communities/{community_id}/activities.ics", headers=identities.headers(other)
    )
    assert [str(e["summary"]) for e in events_of(r.content)] == ["Circle 0", "Circle 1"]
    r = await events.client.get(
        f"/communities/{community_id}/activities.ics", headers=identities.headers(stranger)
    )
    assert r.status_code == 403

    # The personal feed: an unguessable token, stored hashed, revocable.
    r = await events.client.post(
        "/calendar/tokens", json={"label": "phone"}, headers=identities.headers(member)
    )
    assert r.status_code == 201, r.text
    issued = r.json()
    token = issued["token"]
    assert len(token) >= 43 and issued["path"] == f"/calendar/feeds/{token}.ics"
    async with events.runtime.db.session() as session:
        [row] = (
            await session.exec(select(CalendarToken).where(CalendarToken.user_id == member))
        ).all()
    assert row.token_hash == token_hash(token) and token not in row.token_hash
    # Whoever calls with the URL (a calendar app's own identity) gets the owner's feed.
    r = await events.client.get(issued["path"], headers=identities.headers(uuid.uuid4()))
    assert r.status_code == 200
    assert [str(e["summary"]) for e in events_of(r.content)] == ["Circle 1"]
    r = await events.client.get("/calendar/tokens", headers=identities.headers(member))
    assert [t["label"] for t in r.json()] == ["phone"] and "token" not in r.json()[0]
    r = await events.client.delete(
        f"/calendar/tokens/{issued['id']}", headers=identities.headers(other)
    )
    assert r.status_code == 404  # not theirs
    r = await events.client.delete(
        f"/calendar/tokens/{issued['id']}", headers=identities.headers(member)
    )
    assert r.status_code == 200 and r.json()["revoked_at"]
    r = await events.client.get(issued["path"], headers=identities.headers(member))
    assert r.status_code == 404
    r = await events.client.get(
        "/calendar/feeds/not-a-token.ics", headers=identities.headers(member)
    )
    assert r.status_code == 404


async def test_a_weekly_series_keeps_its_wall_time_across_dst_and_edits_following(
    events: RunningService, identities: Identities, directory, published
) -> None:
    community_id, _ = await directory.community(events)
    # Tuesdays 19:00 Berlin, from before the October DST change to after it.
    year = utcnow().year + 1
    first = datetime(year, 10, 6, 19, 0, tzinfo=BERLIN)
    while first.weekday() != 1:
        first += timedelta(days=1)
    skipped = first + timedelta(weeks=2)
    r = await events.client.post(
        "/series",
        json={
            "activity": activity_body(
                community_id,
                first,
                registration_opens_at=(first - timedelta(days=3)).isoformat(),
            ),
            "rrule": "FREQ=WEEKLY;BYDAY=TU;COUNT=6",
            "exdates": [skipped.isoformat()],
            "horizon_days": 60,
        },
        headers=staff(identities),
    )
    assert r.status_code == 201, r.text
    series = r.json()
    assert len(series["occurrences"]) == 5  # six, minus the exception

    async def occurrences() -> list[dict[str, Any]]:
        out = []
        for ident in series["occurrences"]:
            r = await events.client.get(f"/activities/{ident}", headers=staff(identities))
            out.append(r.json())
        return out

    got = await occurrences()
    walls = [datetime.fromisoformat(a["starts_at_local"]) for a in got]
    assert all((w.hour, w.minute, w.weekday()) == (19, 0, 1) for w in walls), walls
    assert {w.utcoffset() for w in walls} == {timedelta(hours=2), timedelta(hours=1)}  # DST
    assert skipped.date() not in {w.date() for w in walls}
    assert all(a["series_id"] == series["id"] for a in got)
    # The window moves with each occurrence: opens three days before its own start.
    for a in got:
        opens = datetime.fromisoformat(a["registration_opens_at"])
        assert datetime.fromisoformat(a["starts_at"]) - opens == timedelta(days=3)

    # Edit just the second occurrence's title; then move the third and following to 20:00.
    url = f"/series/{series['id']}/occurrences"
    r = await events.client.patch(
        f"{url}/{got[1]['id']}",
        json={"scope": "this", "changes": {"title": "Special guest"}},
        headers=staff(identities),
    )
    assert r.status_code == 200 and [a["title"] for a in r.json()] == ["Special guest"]
    third = datetime.fromisoformat(got[2]["starts_at_local"])
    r = await events.client.patch(
        f"{url}/{got[2]['id']}",
        json={
            "scope": "following",
            "changes": {
                "starts_at": third.replace(hour=20).isoformat(),
                "ends_at": third.replace(hour=22).isoformat(),
                "location": "Café",
            },
        },
        headers=staff(identities),
    )
    assert r.status_code == 200, r.text
    assert len(r.json()) == 3
    got = await occurrences()
    hours = [datetime.fromisoformat(a["starts_at_local"]).hour for a in got]
    assert hours == [19, 19, 20, 20, 20]
    assert [a["location"] for a in got] == ["Library, room 2"] * 2 + ["Café"] * 3
    assert [a["title"] for a in got][:2] == ["Reading circle", "Special guest"]

    # Monthly on a weekday: the second Thursday; unsupported or empty rules are 422.
    monthly = datetime(year, 1, 8, 18, 30, tzinfo=BERLIN)
    while monthly.weekday() != 3:
        monthly += timedelta(days=1)
    r = await events.client.post(
        "/series",
        json={
            "activity": activity_body(community_id, monthly),
            "rrule": "RRULE:FREQ=MONTHLY;BYDAY=2TH",
            "horizon_days": 100,
        },
        headers=staff(identities),
    )
    assert r.status_code == 201, r.text
    r = await events.client.get(f"/series/{r.json()['id']}", headers=staff(identities))
    assert len(r.json()["occurrences"]) == 4
    for rule in ("FREQ=DAILY", "FREQ=WEEKLY;BYDAY=XX", "nonsense", "FREQ=WEEKLY;UNTIL=19990101"):
        r = await events.client.post(
            "/series",
            json={"activity": activity_body(community_id, monthly), "rrule": rule},
            headers=staff(identities),
        )
        assert r.status_code == 422 and r.json()["type"].endswith(":invalid-rrule"), (rule, r.text)
    r = await events.client.post(
        "/series",
        json={"activity": activity_body(community_id, monthly), "rrule": "FREQ=WEEKLY"},
        headers=identities.headers(uuid.uuid4()),
    )
    assert r.status_code == 403
