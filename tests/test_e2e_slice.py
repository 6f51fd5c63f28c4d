"""The walking skeleton end to end: every process real, every call through the gateway.

token → community → join → post → screening verdict → registration → metrics counts it →
a goal shows the count as progress, with every event on NATS as a CloudEvent.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import httpx
import nats
import pytest

from hearth_members.goals.models import GoalMetric
from servicekit.testing.harness import eventually
from servicekit.testing.platform import Platform

PROBLEM = "application/problem+json"
OPERATOR_ID = "00000000-0000-7000-8000-000000000001"
MEMBER_ID = "00000000-0000-7000-8000-000000000002"


async def token(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    r = await client.post(
        "/auth/token", json={"username": username, "password": f"hearth-{username}"}
    )
    assert r.status_code == 200, r.text
    return {"authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
async def gw(platform: Platform):
    async with httpx.AsyncClient(base_url=platform.gateway, timeout=10) as client:
        yield client


async def test_walking_skeleton_end_to_end(platform: Platform, gw: httpx.AsyncClient) -> None:
    nc = await nats.connect(platform.nats_url)
    seen: list[Any] = []

    async def collect(msg: Any) -> None:
        seen.append(msg)

    await nc.subscribe(f"{platform.subject_prefix}.>", cb=collect)
    try:
        operator = await token(gw, "operator")
        member = await token(gw, "member")
        member2 = await token(gw, "member2")

        r = await gw.post(
            "/api/members/communities",
            json={"name": "Customer circle", "kind": "hybrid"},
            headers=operator,
        )
        assert r.status_code == 201, r.text
        community = r.json()["id"]
        assert r.json()["created_by"] == OPERATOR_ID

        for who in (member, member2):
            r = await gw.post(f"/api/members/communities/{community}/members", headers=who)
            assert r.status_code == 201, r.text

        async def post(title: str, body: str) -> dict:
            # Content authorizes from its own read model, fed by members' events: eventually.
            async def attempt():
                r = await gw.post(
                    f"/api/content/communities/{community}/posts",
                    json={"title": title, "body": body, "format": "text"},
                    headers=member,
                )
                if r.status_code == 403:
                    return None
                assert r.status_code == 201, r.text
                return r.json()

            return await eventually(attempt)

        clean = await post("Hello", "Glad to be here")
        spam = await post("Deal", "Buy now, best price! 加微信 for free money")
        assert clean["status"] == "pending_review"

        async def status_of(post_id: str) -> str:
            r = await gw.get(f"/api/content/posts/{post_id}", headers=member)
            assert r.status_code == 200, r.text
            return r.json()["status"]

        await eventually(lambda: _is(status_of(clean["id"]), "published"))
        await eventually(lambda: _is(status_of(spam["id"]), "held"))

        r = await gw.post(
            "/api/events/activities",
            headers=operator,
            json={
                "community_id": community,
                "title": "Launch meetup",
                "kind": "meetup",
                "starts_at": "2030-01-01T10:00:00Z",
                "ends_at": "2030-01-01T12:00:00Z",
                "capacity": 1,
            },
        )
        assert r.status_code == 201, r.text
        activity = r.json()["id"]

        async def register(who: dict[str, str]) -> httpx.Response:
            async def attempt():
                r = await gw.post(f"/api/events/activities/{activity}/registrations", headers=who)
                return None if r.status_code == 403 else r  # read model catching up

            return await eventually(attempt)

        first = await register(member)
        assert first.status_code == 201, first.text
        second = await register(member2)
        # The one seat is taken: the second member joins the waitlist, first come first served.
        assert second.status_code == 201, second.text
        assert (second.json()["status"], second.json()["position"]) == ("waitlisted", 2)

        async def counted() -> dict | None:
            r = await gw.get(f"/api/metrics/communities/{community}/counts", headers=operator)
            assert r.status_code == 200, r.text
            c = r.json()
            want = {"joins": 3, "posts_submitted": 2, "posts_published": 1, "registrations": 1}
            return c if all(c[k] == v for k, v in want.items()) else None

        await eventually(counted, timeout=30)

        # A goal's progress comes from metrics' measured facts, kept by members as a read model;
        # members accepts exactly the metric names of metrics' catalogue.
        r = await gw.get("/api/metrics/catalogue", headers=member)
        assert r.status_code == 200, r.text
        assert [m["name"] for m in r.json()["items"]] == list(get_args(GoalMetric))
        r = await gw.post(
            f"/api/members/communities/{community}/goals",
            json={"metric": "joins", "target": 4, "deadline": "2030-12-31"},
            headers=operator,
        )
        assert r.status_code == 201, r.text

        async def goal_measured() -> dict | None:
            r = await gw.get(f"/api/members/communities/{community}/goals", headers=member)
            assert r.status_code == 200, r.text
            [goal] = r.json()
            return goal if goal["current"] == 3 else None

        goal = await eventually(goal_measured, timeout=30)
        assert (goal["progress"], goal["status"]) == (0.75, "on_track")

        # Every event on NATS is a binary-mode CloudEvent whose type matches its subject.
        await asyncio.sleep(0.3)
        types = set()
        for m in seen:
            h = m.headers or {}
            assert h["ce-specversion"] == "1.0" and h["Nats-Msg-Id"] == h["ce-id"]
            assert h["ce-type"] == "hearth." + m.subject.split(".", 1)[1]
            assert uuid.UUID(h["ce-id"]).version == 7
            types.add(h["ce-type"])
        assert {
            "hearth.members.community.created.v1",
            "hearth.members.member.joined.v1",
            "hearth.content.post.submitted.v1",
            "hearth.moderation.screening.completed.v1",
            "hearth.content.post.published.v1",
            "hearth.content.post.held.v1",
            "hearth.events.registration.confirmed.v1",
            "hearth.metrics.community.measured.v1",
        } <= types
    finally:
        await nc.close()


async def _is(awaitable: Any, expected: str) -> bool:
    return (await awaitable) == expected


async def test_calendar_slot_and_event_reminder_through_the_gateway(
    platform: Platform, gw: httpx.AsyncClient
) -> None:
    """A booked post goes out at its slot; a registrant finds the reminder in their inbox."""
    operator = await token(gw, "operator")
    member = await token(gw, "member")
    r = await gw.post(
        "/api/members/communities",
        json={"name": "Calendar circle", "kind": "internal"},
        headers=operator,
    )
    assert r.status_code == 201, r.text
    community = r.json()["id"]
    r = await gw.post(f"/api/members/communities/{community}/members", headers=member)
    assert r.status_code == 201, r.text

    slot = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()

    async def book() -> dict | None:
        r = await gw.post(
            f"/api/content/communities/{community}/posts",
            json={"title": "Weekly digest", "body": "This week.", "publish_at": slot},
            headers=member,
        )
        if r.status_code == 403:
            return None  # content's read model catching up
        assert r.status_code == 201, r.text
        return r.json()

    booked = await eventually(book)

    async def status_of() -> str:
        r = await gw.get(f"/api/content/posts/{booked['id']}", headers=member)
        assert r.status_code == 200, r.text
        return r.json()["status"]

    await eventually(lambda: _is(status_of(), "scheduled"))  # passed review, waits for its slot
    await eventually(lambda: _is(status_of(), "published"), timeout=20)

    starts = datetime.now(UTC) + timedelta(hours=2)
    r = await gw.post(
        "/api/events/activities",
        headers=operator,
        json={
            "community_id": community,
            "title": "Ask me anything",
            "kind": "lecture",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=1)).isoformat(),
            "capacity": 50,
        },
    )
    assert r.status_code == 201, r.text
    activity = r.json()["id"]

    async def register() -> httpx.Response | None:
        r = await gw.post(f"/api/events/activities/{activity}/registrations", headers=member)
        return None if r.status_code == 403 else r

    assert (await eventually(register)).status_code == 201

    async def reminder() -> dict | None:
        r = await gw.get("/api/members/me/notifications", headers=member)
        assert r.status_code == 200, r.text
        found = [  # this activity's (other tests' activities remind the same member)
            n
            for n in r.json()["items"]
            if n["kind"] == "event.reminder" and "Ask me anything" in n["title"] + n["body"]
        ]
        return found[0] if found else None

    note = await eventually(reminder, timeout=30)
    assert "Ask me anything" in note["title"] + note["body"]


async def test_bad_input_through_the_gateway(platform: Platform, gw: httpx.AsyncClient) -> None:
    operator = await token(gw, "operator")
    member = await token(gw, "member")
    r = await gw.post(f"/api/members/communities/{uuid.uuid4()}/members", headers=member)
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    r = await gw.post("/api/members/communities", json={"name": "x"}, headers=operator)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    r = await gw.post(
        "/api/members/communities",
        content=b"{not json",
        headers={**operator, "content-type": "application/json"},
    )
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    r = await gw.post(
        "/api/members/communities", json={"name": "Twice", "kind": "internal"}, headers=operator
    )
    community = r.json()["id"]
    first = await gw.post(f"/api/members/communities/{community}/members", headers=member)
    again = await gw.post(f"/api/members/communities/{community}/members", headers=member)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    members = (await gw.get(f"/api/members/communities/{community}/members", headers=member)).json()
    assert [m["user_id"] for m in members["items"]].count(MEMBER_ID) == 1


async def test_identity_cannot_be_forged(platform: Platform, gw: httpx.AsyncClient) -> None:
    r = await gw.get("/api/members/communities")
    assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
    # A client-supplied identity header is ignored: without a token it is still 401 …
    async with httpx.AsyncClient(base_url=platform.service("members")) as direct:
        forged = await direct.get("/communities", headers={"x-hearth-identity": "forged"})
        assert forged.status_code == 401
    r = await gw.get("/api/members/communities", headers={"x-hearth-identity": "forged"})
    assert r.status_code == 401
    # … and with a member's token it cannot lift the member to operator.
    member = await token(gw, "member")
    stolen = await token(gw, "operator")
    r = await gw.post(
        "/api/members/communities",
        json={"name": "x", "kind": "internal"},
        headers={**member, "x-hearth-identity": stolen["authorization"]},
    )
    assert r.status_code == 403
    # Services refuse requests that did not come through the gateway.
    async with httpx.AsyncClient(base_url=platform.service("content")) as direct:
        assert (await direct.get("/posts/" + str(uuid.uuid4()))).status_code == 401
