"""Editing and deleting columns: owners and staff only; a column with planned posts stays."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from servicekit.ids import utcnow
from servicekit.testing.harness import Identities, RunningService

PROBLEM = "application/problem+json"
SHANGHAI = ZoneInfo("Asia/Shanghai")
WEEKLY = {"name": "每周资讯", "cadence": "weekly", "weekday": 0, "hour": 9}


def _mondays_9am(weeks_ahead: int) -> tuple[Any, datetime]:
    today = utcnow().astimezone(SHANGHAI).date()
    monday = today - timedelta(days=today.weekday()) + timedelta(weeks=weeks_ahead)
    return monday, datetime.combine(monday, time(9), tzinfo=SHANGHAI).astimezone(UTC)


class Planner:
    """A community with an owner, a moderator, a column owner (editor) and a member."""

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
        body = {**WEEKLY, "time_zone": "Asia/Shanghai", "owners": [str(self.editor)], **changes}
        r = await self.call("POST", f"/communities/{self.id}/columns", self.owner, body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def post(self) -> str:
        body = {"title": "本周要闻", "body": "…", "format": "text"}
        r = await self.call("POST", f"/communities/{self.id}/posts", self.member, body)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


async def test_column_owners_and_staff_edit_it_and_the_merged_column_is_checked(
    content: RunningService, feed: Any, identities: Identities
) -> None:
    p = await Planner(content, feed, identities).setup()
    column = await p.column()
    other = await p.column(name="每月回顾", cadence="monthly", day_of_month=1, weekday=None)
    url = f"/columns/{column['id']}"
    r = await p.call("PATCH", url, p.member, {"description": "mine now"})
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    r = await p.call("PATCH", url, p.editor, {"hour": 10, "tags": ["Weekly"]})  # column owner
    assert r.status_code == 200, r.text
    assert (r.json()["hour"], r.json()["tags"], r.json()["name"]) == (10, ["weekly"], "每周资讯")
    r = await p.call("PATCH", url, p.mod, {"description": "moderators run the calendar"})
    assert r.status_code == 200 and r.json()["hour"] == 10  # omitted fields stay
    r = await p.call("PATCH", url, p.owner, {"cadence": "monthly"})  # no day_of_month
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, r.text
    r = await p.call("PATCH", url, p.owner, {"name": None})
    assert r.status_code == 422, r.text
    r = await p.call("PATCH", url, p.owner, {"name": other["name"]})
    assert r.status_code == 409 and r.json()["type"] == "urn:hearth:problem:column-exists"
    r = await p.call("PATCH", f"/columns/{uuid.uuid4()}", p.owner, {"hour": 1})
    assert r.status_code == 404
    r = await p.call("GET", f"/communities/{p.id}/columns", p.member)
    [got] = [c for c in r.json() if c["id"] == column["id"]]
    assert got["description"] == "moderators run the calendar" and got["hour"] == 10


async def test_a_column_with_a_planned_post_is_not_deleted_until_it_is_unbooked(
    content: RunningService, feed: Any, identities: Identities
) -> None:
    p = await Planner(content, feed, identities).setup()
    column = await p.column()
    post = await p.post()
    _, slot = _mondays_9am(2)
    r = await p.call(
        "PUT",
        f"/posts/{post}/slot",
        p.editor,
        {"column_id": column["id"], "starts_at": slot.isoformat()},
    )
    assert r.status_code == 200, r.text
    url = f"/columns/{column['id']}"
    r = await p.call("DELETE", url, p.member)
    assert r.status_code == 403
    r = await p.call("DELETE", url, p.owner)
    assert r.status_code == 409 and r.json()["type"] == "urn:hearth:problem:column-has-bookings"
    assert r.json()["post_ids"] == [post]
    r = await p.call("DELETE", f"/posts/{post}/slot", p.editor)
    assert r.status_code == 204, r.text
    r = await p.call("DELETE", url, p.editor)
    assert r.status_code == 204, r.text
    r = await p.call("GET", f"/communities/{p.id}/columns", p.member)
    assert column["id"] not in [c["id"] for c in r.json()]
    r = await p.call("GET", f"/posts/{post}", p.member)
    assert r.status_code == 200 and r.json()["publish_at"] is None  # the post stays
    r = await p.call("DELETE", url, p.owner)
    assert r.status_code == 404
