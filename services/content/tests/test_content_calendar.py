"""Columns (固定栏目) and the content calendar: planned slots, bookings, gaps, iCalendar."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar

from hearth_content.service import publish_due
from servicekit.ids import utcnow
from servicekit.testing.harness import Identities, RunningService, eventually

PROBLEM = "application/problem+json"
SHANGHAI = ZoneInfo("Asia/Shanghai")
WEEKLY = {
    "name": "每周资讯",
    "description": "Weekly news",
    "cadence": "weekly",
    "weekday": 0,
    "hour": 9,
    "time_zone": "Asia/Shanghai",
    "tags": ["资讯", "\uff21\uff29 News", "ai  news", "#资讯"],
}


def _mondays_9am(weeks_ahead: int) -> tuple[date, datetime]:
    today = utcnow().astimezone(SHANGHAI).date()
    monday = today - timedelta(days=today.weekday()) + timedelta(weeks=weeks_ahead)
    return monday, datetime.combine(monday, time(9), tzinfo=SHANGHAI).astimezone(UTC)


class Planner:
    """A community with an owner, a moderator, a column owner and a member."""

    def __init__(self, content: RunningService, feed: Any, identities: Identities) -> None:
        self.content, self.feed, self.ids = content, feed, identities
        self.owner, self.mod = uuid.uuid4(), uuid.uuid4()
        self.editor, self.member = uuid.uuid4(), uuid.uuid4()

    async def setup(self) -> Planner:
        self.id = await self.feed.community(owner=self.owner)
        await self.feed.member(self.id, self.mod, role="moderator")
        await self.feed.member(self.id, self.editor)
        await self.feed.member(self.id, self.member)
        return self

    async def call(self, method: str, path: str, user: uuid.UUID, body: Any = None) -> Any:
        return await self.content.client.request(
            method, path, headers=self.ids.headers(user), json=body
        )

    async def column(self, **changes: Any) -> dict:
        body = {**WEEKLY, "owners": [str(self.editor)], **changes}
        r = await self.call("POST", f"/communities/{self.id}/columns", self.owner, body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def post(self, author: uuid.UUID | None = None, title: str = "本周要闻") -> str:
        r = await self.call(
            "POST",
            f"/communities/{self.id}/posts",
            author or self.member,
            {"title": title, "body": "…", "format": "text"},
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    async def week(self, day: date, user: uuid.UUID | None = None) -> dict:
        r = await self.call(
            "GET",
            f"/communities/{self.id}/calendar?view=week&date={day}&tz=Asia/Shanghai",
            user or self.mod,
        )
        assert r.status_code == 200, r.text
        return dict(r.json())


async def test_week_view_shows_planned_slots_bookings_and_gaps(
    content: RunningService, feed: Any, identities: Identities
) -> None:
    p = await Planner(content, feed, identities).setup()
    column = await p.column()
    assert column["tags"] == ["资讯", "ai-news"]  # normalized: width, case, spaces, '#'
    tags = (await p.call("GET", f"/communities/{p.id}/tags", p.member)).json()
    assert [t["slug"] for t in tags] == ["ai-news", "资讯"]
    monday, slot = _mondays_9am(1)
    view = await p.week(monday)
    assert view["start"].startswith(str(monday - timedelta(days=1)))  # 00:00 +08:00 in UTC
    [planned] = view["slots"]
    assert planned["gap"] and planned["post"] is None and view["gaps"] == 1
    assert datetime.fromisoformat(planned["starts_at"]) == slot
    post = await p.post()
    # The column's owner books a member's post into the slot.
    r = await p.call(
        "PUT",
        f"/posts/{post}/slot",
        p.editor,
        {"column_id": column["id"], "starts_at": slot.isoformat()},
    )
    assert r.status_code == 200, r.text
    assert r.json()["slot_id"] == planned["slot_id"]  # a slot's id is stable
    view = await p.week(monday)
    [booked] = view["slots"]
    assert booked["post"]["id"] == post and not booked["gap"] and view["gaps"] == 0
    # Another post cannot take the same slot; a time off the cadence is no slot.
    other = await p.post(title="second")
    r = await p.call(
        "PUT",
        f"/posts/{other}/slot",
        p.mod,
        {"column_id": column["id"], "starts_at": slot.isoformat()},
    )
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
    r = await p.call(
        "PUT",
        f"/posts/{other}/slot",
        p.mod,
        {"column_id": column["id"], "starts_at": (slot + timedelta(hours=1)).isoformat()},
    )
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    # Move the booked post a week later: the first slot is a gap again.
    later_monday, later = _mondays_9am(2)
    r = await p.call(
        "PUT",
        f"/posts/{post}/slot",
        p.mod,
        {"column_id": column["id"], "starts_at": later.isoformat()},
    )
    assert r.status_code == 200, r.text
    assert (await p.week(monday))["gaps"] == 1
    assert (await p.week(later_monday))["slots"][0]["post"]["id"] == post
    got = await p.call("GET", f"/posts/{post}", p.member)
    assert datetime.fromisoformat(got.json()["publish_at"]) == later
    # Unbook: the post has no publish time and the slot is a gap.
    assert (await p.call("DELETE", f"/posts/{post}/slot", p.mod)).status_code == 204
    assert (await p.week(later_monday))["gaps"] == 1
    assert (await p.call("GET", f"/posts/{post}", p.member)).json()["publish_at"] is None
    # A month view holds every Monday of the month.
    r = await p.call(
        "GET", f"/communities/{p.id}/calendar?view=month&date={monday}&tz=Asia/Shanghai", p.mod
    )
    first = monday.replace(day=1)
    mondays = [
        first + timedelta(days=d)
        for d in range(31)
        if (first + timedelta(days=d)).month == first.month
        and (first + timedelta(days=d)).weekday() == 0
    ]
    assert len(r.json()["slots"]) == len(mondays)


async def test_monthly_columns_fall_back_to_the_months_last_day(
    content: RunningService, feed: Any, identities: Identities
) -> None:
    p = await Planner(content, feed, identities).setup()
    await p.column(name="月度回顾", cadence="monthly", weekday=None, day_of_month=31, hour=20)
    year = utcnow().year + 1
    r = await p.call(
        "GET", f"/communities/{p.id}/calendar?view=month&date={year}-02-10&tz=Asia/Shanghai", p.mod
    )
    [slot] = r.json()["slots"]
    local = datetime.fromisoformat(slot["starts_at"]).astimezone(SHANGHAI)
    assert (local.month, local.hour) == (2, 20) and local.day in (28, 29)


async def test_the_ical_feed_parses_and_booked_posts_publish_once(
    content: RunningService,
    feed: Any,
    identities: Identities,
    stream_events: Any,
    subject_prefix: str,
) -> None:
    p = await Planner(content, feed, identities).setup()
    column = await p.column()
    _, slot = _mondays_9am(1)
    post = await p.post()
    r = await p.call(
        "PUT",
        f"/posts/{post}/slot",
        p.mod,
        {"column_id": column["id"], "starts_at": slot.isoformat()},
    )
    assert r.status_code == 200
    r = await p.call("GET", f"/communities/{p.id}/calendar.ics", p.mod)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/calendar")
    cal = Calendar.from_ical(r.content)
    events = list(cal.walk("VEVENT"))
    summaries = {str(e["SUMMARY"]) for e in events}
    assert "每周资讯: 本周要闻" in summaries
    assert any(s.endswith("(open slot)") for s in summaries)  # later Mondays are gaps
    booked = next(e for e in events if str(e["SUMMARY"]) == "每周资讯: 本周要闻")
    assert booked.decoded("DTSTART") == slot
    r = await p.call(
        "GET",
        f"/communities/{p.id}/calendar.ics?from=2030-01-02T00:00:00Z&to=2029-01-01T00:00:00Z",
        p.mod,
    )
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    # Screening passes it: scheduled for the slot, announced with its column.
    assert await feed.verdict(post, "approved")
    [scheduled] = await eventually(
        lambda: _of(stream_events, f"{subject_prefix}.content.post.scheduled.v1", post)
    )
    assert scheduled.data["column_id"] == column["id"]
    # Two publisher passes after the slot (as two replicas would): published once.
    after = slot + timedelta(minutes=1)
    assert await publish_due(content.runtime, now=after) == 1
    assert await publish_due(content.runtime, now=after) == 0
    r = await p.call(
        "PUT",
        f"/posts/{post}/slot",
        p.mod,
        {"column_id": column["id"], "starts_at": _mondays_9am(2)[1].isoformat()},
    )
    assert r.status_code == 409  # a published post's time is history
    [published] = await eventually(
        lambda: _of(stream_events, f"{subject_prefix}.content.post.published.v1", post)
    )
    assert published.data["column_id"] == column["id"]


async def _of(stream_events: Any, subject: str, post: str) -> list:
    found = [e for e in await stream_events(subject) if e.data["post_id"] == post]
    assert found
    return found


async def test_calendar_routes_refuse_members_and_bad_input(
    content: RunningService, feed: Any, identities: Identities
) -> None:
    p = await Planner(content, feed, identities).setup()
    column = await p.column()
    post = await p.post()
    _, slot = _mondays_9am(1)
    outsider = uuid.uuid4()
    cid = p.id
    book = {"column_id": column["id"], "starts_at": slot.isoformat()}
    refusals = [
        ("POST", f"/communities/{cid}/columns", p.member, {**WEEKLY, "name": "x"}, 403),
        ("POST", f"/communities/{cid}/columns", p.mod, {**WEEKLY, "name": "x"}, 403),
        ("POST", f"/communities/{cid}/columns", p.owner, WEEKLY, 409),  # the name is taken
        ("POST", f"/communities/{cid}/columns", p.owner, {**WEEKLY, "time_zone": "Mars/Base"}, 422),
        ("POST", f"/communities/{cid}/columns", p.owner, {**WEEKLY, "weekday": None}, 422),
        ("GET", f"/communities/{cid}/columns", outsider, None, 403),
        ("GET", f"/communities/{cid}/tags", outsider, None, 403),
        ("GET", f"/communities/{cid}/calendar", p.member, None, 403),
        ("GET", f"/communities/{cid}/calendar?tz=Nowhere", p.mod, None, 422),
        ("GET", f"/communities/{cid}/calendar.ics", p.member, None, 403),
        ("GET", f"/communities/{cid}/calendar.ics", outsider, None, 403),
        ("PUT", f"/posts/{post}/slot", p.member, book, 403),
        ("PUT", f"/posts/{post}/slot", outsider, book, 403),
        ("DELETE", f"/posts/{post}/slot", p.member, None, 403),
        ("DELETE", f"/posts/{post}/slot", p.mod, None, 404),  # not booked
    ]
    for method, path, user, body, code in refusals:
        r = await p.call(method, path, user, body)
        assert r.status_code == code, (method, path, r.status_code, r.text)
        assert r.headers["content-type"] == PROBLEM, (method, path)
    # A column's owner (a plain member) plans: the calendar opens to them.
    assert (await p.week(_mondays_9am(1)[0], p.editor))["gaps"] == 1
