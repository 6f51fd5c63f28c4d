"""Moderation's queue decisions reach content and events through the gateway, every process
real: a held post approved in the queue is published; a rejected one shows its author the
reason; an appeal lifted restores it; a Q&A question with a watched word is held out of the
public list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from servicekit.testing.harness import eventually
from servicekit.testing.platform import Platform

WORD = "megagiveaway"


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


async def test_queue_decisions_and_appeals_apply_to_posts_and_questions(
    platform: Platform, gw: httpx.AsyncClient
) -> None:
    operator, admin = await token(gw, "operator"), await token(gw, "admin")
    member, reader = await token(gw, "member"), await token(gw, "member2")
    r = await gw.post(
        "/api/members/communities", json={"name": "Decisions", "kind": "customer"}, headers=operator
    )
    assert r.status_code == 201, r.text
    community = r.json()["id"]
    for who in (member, reader):
        r = await gw.post(f"/api/members/communities/{community}/members", headers=who)
        assert r.status_code == 201, r.text
    rules = {"words": [{"term": WORD, "action": "require_approval", "reason": "promotion"}]}
    r = await gw.put(
        f"/api/moderation/communities/{community}/rules", json={"rules": rules}, headers=operator
    )
    assert r.status_code == 201, r.text

    async def held_post(title: str) -> str:
        body = {"title": title, "body": f"Join the {WORD} tonight!", "format": "text"}

        async def posted() -> str | None:
            r = await gw.post(
                f"/api/content/communities/{community}/posts", json=body, headers=member
            )
            return r.json()["id"] if r.status_code == 201 else None

        post = await eventually(posted)  # content knows the member

        async def held() -> bool:
            r = await gw.get(f"/api/content/posts/{post}", headers=member)
            return r.json()["status"] == "held"

        await eventually(held)
        return post

    async def entry_of(item: str) -> dict[str, Any]:
        async def found() -> dict[str, Any] | None:
            r = await gw.get(
                f"/api/moderation/communities/{community}/queue",
                params={"kind": "held"},
                headers=operator,
            )
            assert r.status_code == 200, r.text
            return next((e for e in r.json()["items"] if e["item_id"] == item), None)

        return await eventually(found)

    async def decide(entry: dict[str, Any], decision: str, reason: str | None = None) -> None:
        r = await gw.post(
            f"/api/moderation/queue/{entry['id']}/decision",
            json={"decision": decision, "note": "checked", "author_reason": reason},
            headers=operator,
        )
        assert r.status_code == 200, r.text

    async def reader_sees(post: str) -> bool:
        r = await gw.get(f"/api/content/posts/{post}", headers=reader)
        return r.status_code == 200 and r.json()["status"] == "published"

    # Approved in the queue: published, the other member reads it.
    approved = await held_post("Approve me")
    assert not await reader_sees(approved)
    await decide(await entry_of(approved), "dismiss")
    await eventually(lambda: reader_sees(approved))

    # Rejected: the author reads the reason on the post; others still do not see it.
    rejected = await held_post("Reject me")
    entry = await entry_of(rejected)
    reason = "Promotions belong in the partner channel."
    await decide(entry, "uphold", reason)

    async def rejection() -> dict[str, Any] | None:
        r = await gw.get(f"/api/content/posts/{rejected}", headers=member)
        return r.json() if r.json()["status"] == "rejected" else None

    got = await eventually(rejection)
    assert got["rejection_reason"] == reason
    assert not await reader_sees(rejected)

    # The author appeals; the moderator who rejected it may not decide; another lifts it.
    r = await gw.post(
        f"/api/moderation/queue/{entry['id']}/appeals",
        json={"text": "It is a free community event."},
        headers=member,
    )
    assert r.status_code == 201, r.text
    appeal = r.json()["id"]
    r = await gw.post(
        f"/api/moderation/appeals/{appeal}/decision",
        json={"outcome": "lifted", "reason": "ok"},
        headers=operator,
    )
    assert r.status_code == 403, r.text
    r = await gw.post(
        f"/api/moderation/appeals/{appeal}/decision",
        json={"outcome": "lifted", "reason": "A free event is fine."},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    await eventually(lambda: reader_sees(rejected))
    r = await gw.get(f"/api/content/posts/{rejected}", headers=member)
    assert r.json()["rejection_reason"] is None

    # Q&A: a question with the watched word is held, out of the public list.
    starts = datetime.now(UTC) + timedelta(days=1)
    activity_body = {
        "community_id": community,
        "title": "Ask me anything",
        "kind": "lecture",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=1)).isoformat(),
        "capacity": 10,
    }

    async def activity() -> str | None:
        r = await gw.post("/api/events/activities", json=activity_body, headers=operator)
        return r.json()["id"] if r.status_code == 201 else None

    questions = f"/api/events/activities/{await eventually(activity)}/questions"

    async def asked(text: str) -> str | None:
        r = await gw.post(questions, json={"text": text}, headers=member)
        return r.json()["id"] if r.status_code == 201 else None

    held_q = await eventually(lambda: asked(f"Is there a {WORD} after the talk?"))
    clean_q = await eventually(lambda: asked("Will the slides be shared?"))

    async def author_sees_held() -> dict[str, Any] | None:
        r = await gw.get(questions, headers=member)
        mine = {q["id"]: q for q in r.json()}
        return mine[held_q] if mine[held_q]["visibility"] == "held" else None

    mine = await eventually(author_sees_held)
    assert mine["hold_reasons"] == ["promotion"]
    r = await gw.get(questions, headers=reader)
    assert r.status_code == 200, r.text
    public = [q["id"] for q in r.json()]
    assert held_q not in public and clean_q in public
    r = await gw.get(questions, headers=operator)
    assert {q["id"]: q["visibility"] for q in r.json()}[held_q] == "held"  # the host sees it
