"""An activity's day through the gateway: check-in by QR code, a lucky draw the registrant
verifies from the published proof URL with the shipped verifier, and a question upvoted."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from servicekit.testing.harness import eventually
from servicekit.testing.platform import Platform


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


async def test_check_in_draw_and_questions_through_the_gateway(
    platform: Platform, gw: httpx.AsyncClient
) -> None:
    operator = await token(gw, "operator")
    member = await token(gw, "member")
    member2 = await token(gw, "member2")
    r = await gw.post(
        "/api/members/communities", json={"name": "Day circle", "kind": "hybrid"}, headers=operator
    )
    assert r.status_code == 201, r.text
    community = r.json()["id"]
    for who in (member, member2):
        r = await gw.post(f"/api/members/communities/{community}/members", headers=who)
        assert r.status_code == 201, r.text
    starts = datetime.now(UTC) + timedelta(minutes=20)
    body = {
        "community_id": community,
        "title": "Launch day",
        "kind": "meetup",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=1)).isoformat(),
        "capacity": 10,
    }

    async def published() -> str | None:
        r = await gw.post("/api/events/activities", json=body, headers=operator)
        return r.json()["id"] if r.status_code == 201 else None

    activity = await eventually(published)
    api = f"/api/events/activities/{activity}"
    for who in (member, member2):

        async def registered(who: dict[str, str] = who) -> bool:
            r = await gw.post(f"{api}/registrations", headers=who)
            return r.status_code in (200, 201)

        await eventually(registered)

    # The registrant shows a QR code; the host scans it (the code it carries) at the door.
    r = await gw.get(f"{api}/registrations/me/check-in-code", headers=member)
    assert r.status_code == 200, r.text
    code = r.json()["code"]
    r = await gw.get(f"{api}/registrations/me/check-in-code/qr.png", headers=member)
    assert r.status_code == 200 and r.content.startswith(b"\x89PNG"), r.status_code
    r = await gw.post(f"{api}/check-ins", json={"code": code}, headers=member2)
    assert r.status_code == 403  # a member is not a host
    for expected in (201, 200):  # twice counts once
        r = await gw.post(f"{api}/check-ins", json={"code": code}, headers=operator)
        assert r.status_code == expected, r.text

    # A draw among the checked in: commit, reveal, and the registrant verifies it.
    r = await gw.post(
        f"{api}/draws",
        json={"title": "Door prize", "prizes": [{"name": "Hoodie", "count": 1}]},
        headers=operator,
    )
    assert r.status_code == 201, r.text
    draw = r.json()["id"]
    r = await gw.post(f"/api/events/draws/{draw}/commit", headers=operator)
    assert r.status_code == 200 and r.json()["eligible_count"] == 1, r.text
    r = await gw.patch(f"/api/events/draws/{draw}", json={"title": "x"}, headers=operator)
    assert r.status_code == 409
    r = await gw.post(f"/api/events/draws/{draw}/reveal", headers=operator)
    assert r.status_code == 200, r.text
    url = f"{platform.gateway}/api/events/draws/{draw}/proof"
    result = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "hearth_events",
            "verify-draw",
            url,
            "-H",
            f"Authorization: {member['authorization']}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: 1 winners" in result.stdout

    # Q&A: a question, upvoted once per member.
    r = await gw.post(f"{api}/questions", json={"text": "When is the next one?"}, headers=member)
    assert r.status_code == 201, r.text
    question = r.json()["id"]
    for _ in range(2):
        r = await gw.put(f"/api/events/questions/{question}/vote", headers=member2)
        assert r.status_code == 200 and r.json()["upvotes"] == 1, r.text


async def test_personal_calendar_feed_is_a_capability_url(
    platform: Platform, gw: httpx.AsyncClient
) -> None:
    """A calendar app fetches the feed with no credential: the URL's token is the credential."""
    member = await token(gw, "member")
    r = await gw.post("/api/events/calendar/tokens", json={"label": "phone"}, headers=member)
    assert r.status_code == 201, r.text
    issued = r.json()
    async with httpx.AsyncClient(base_url=platform.gateway, timeout=10) as app:  # no headers
        r = await app.get(f"/api/events{issued['path']}")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/calendar")
        assert b"BEGIN:VCALENDAR" in r.content
        # A made-up token is refused by events; any other path still needs a credential.
        r = await app.get("/api/events/calendar/feeds/" + "x" * 43 + ".ics")
        assert r.status_code == 404, r.text
        r = await app.get("/api/events/calendar/tokens")
        assert r.status_code == 401
        r = await app.post(f"/api/events{issued['path']}")
        assert r.status_code == 401
        # Revoked, the URL stops working.
        r = await gw.delete(f"/api/events/calendar/tokens/{issued['id']}", headers=member)
        assert r.status_code in (200, 204), r.text
        r = await app.get(f"/api/events{issued['path']}")
        assert r.status_code == 404
