"""Moderation's must-holds through the gateway, every process real: the ladder mutes and the
mute ends by itself; the sanctioning moderator cannot decide the appeal."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest

from servicekit.testing.harness import eventually
from servicekit.testing.platform import Platform

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


async def test_three_warnings_mute_then_the_mute_lifts_through_the_gateway(
    platform: Platform, gw: httpx.AsyncClient
) -> None:
    operator = await token(gw, "operator")
    member = await token(gw, "member")
    r = await gw.post(
        "/api/members/communities", json={"name": "Ladder", "kind": "customer"}, headers=operator
    )
    assert r.status_code == 201, r.text
    community = r.json()["id"]
    r = await gw.post(f"/api/members/communities/{community}/members", headers=member)
    assert r.status_code == 201, r.text
    r = await gw.patch(
        f"/api/moderation/communities/{community}/sanctions/ladder",
        json={"mute_seconds": 5},
        headers=operator,
    )
    assert r.status_code == 200, r.text
    post = {"title": "Hello", "body": "Glad to be here.", "format": "text"}
    url = f"/api/content/communities/{community}/posts"

    async def can_post() -> bool:
        r = await gw.post(url, json=post, headers=member)
        return r.status_code == 201

    await eventually(can_post)  # content knows the member
    made = []
    for n in range(3):
        r = await gw.post(
            f"/api/moderation/communities/{community}/sanctions",
            json={"user_id": MEMBER_ID, "reason": f"spam ({n + 1})", "quote": "buy now"},
            headers=operator,
        )
        assert r.status_code == 201, r.text
        made.append(r.json())
    mute = made[-1][-1]
    assert mute["level"] == "mute" and mute["cause"] == "ladder"

    async def refused() -> dict:
        r = await gw.post(url, json=post, headers=member)
        return r.json() if r.status_code == 403 else {}

    problem = await eventually(refused)
    assert problem["type"].endswith("muted")
    assert datetime.fromisoformat(problem["muted_until"]) == datetime.fromisoformat(mute["ends_at"])

    # The member appeals; the operator who imposed the warnings may not decide it.
    r = await gw.post(
        f"/api/moderation/sanctions/{mute['id']}/appeals",
        json={"text": "It was a joke."},
        headers=member,
    )
    assert r.status_code == 201, r.text
    r = await gw.post(
        f"/api/moderation/appeals/{r.json()['id']}/decision",
        json={"outcome": "lifted", "reason": "ok"},
        headers=operator,
    )
    assert r.status_code == 403, r.text

    await eventually(can_post, timeout=25)  # the mute ended by itself
