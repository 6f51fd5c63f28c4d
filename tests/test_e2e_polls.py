"""Polls end to end through the gateway: a member votes; a muted member is refused, with the end.

Members' join and mute reach content as membership snapshots over NATS; content's write gate
(hearth_content.guards) refuses the muted member's vote with 403 and the mute's end.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from servicekit.testing.harness import eventually
from servicekit.testing.platform import Platform

MEMBER2_ID = "00000000-0000-7000-8000-000000000004"


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


async def test_a_member_votes_and_a_muted_member_is_refused_with_the_mute_end(
    platform: Platform, gw: httpx.AsyncClient
) -> None:
    operator = await token(gw, "operator")
    member = await token(gw, "member")
    member2 = await token(gw, "member2")
    r = await gw.post(
        "/api/members/communities",
        json={"name": "Poll circle", "kind": "internal"},
        headers=operator,
    )
    assert r.status_code == 201, r.text
    community = r.json()["id"]
    for who in (member, member2):
        r = await gw.post(f"/api/members/communities/{community}/members", headers=who)
        assert r.status_code == 201, r.text
    until = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    r = await gw.post(
        f"/api/members/communities/{community}/members/{MEMBER2_ID}/mute",
        json={"muted_until": until.isoformat(), "reason": "cool down"},
        headers=operator,
    )
    assert r.status_code == 200, r.text

    async def open_poll(question: str) -> dict | None:
        # Content authorizes from its read model of members' snapshots: eventually.
        r = await gw.post(
            f"/api/content/communities/{community}/polls",
            json={"question": question, "options": ["Mon", "Tue"]},
            headers=operator,
        )
        if r.status_code in (403, 404):
            return None
        assert r.status_code == 201, r.text
        return dict(r.json())

    poll = await eventually(lambda: open_poll("Which day?"))
    probe = await eventually(lambda: open_poll("Closed probe"))
    r = await gw.post(f"/api/content/polls/{probe['id']}/close", headers=operator)
    assert r.status_code == 200, r.text
    choice = {"option_ids": [poll["options"][1]["id"]]}

    async def vote(who: dict[str, str], poll_id: str) -> httpx.Response:
        return await gw.put(f"/api/content/polls/{poll_id}/vote", json=choice, headers=who)

    async def member_votes() -> dict | None:
        r = await vote(member, poll["id"])
        if r.status_code == 404:
            return None  # the join has not reached content yet
        assert r.status_code == 200, r.text
        return dict(r.json())

    voted = await eventually(member_votes)
    assert voted["my_choices"] == [poll["options"][1]["id"]]
    assert [o["votes"] for o in voted["options"]] == [0, 1]

    # Wait on the closed probe (no vote can land there) until the mute has reached content.
    async def muted_in_content() -> Any:
        r = await vote(member2, probe["id"])
        return r if r.status_code == 403 else None

    await eventually(muted_in_content)
    r = await vote(member2, poll["id"])
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["type"] == "urn:hearth:problem:muted", body
    assert datetime.fromisoformat(body["muted_until"]) == until
    assert until.isoformat()[:16] in body["detail"]
    r = await gw.get(f"/api/content/polls/{poll['id']}", headers=operator)
    assert r.status_code == 200 and r.json()["total_voters"] == 1
