"""Comments and reactions through content's API, over real NATS and the real database."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from sqlalchemy import func, select

from hearth_content.discussion.models import MAX_DEPTH, Reaction
from servicekit.ids import utcnow
from servicekit.testing.harness import Identities, RunningService, eventually

PROBLEM = "application/problem+json"
POST = {"title": "Weekly digest", "body": "What happened this week.", "format": "text"}


async def _published_post(content: RunningService, feed, identities: Identities, author) -> str:
    community_id = await feed.community(owner=author)
    r = await content.client.post(
        f"/communities/{community_id}/posts", json=POST, headers=identities.headers(author)
    )
    assert r.status_code == 201, r.text
    post_id = r.json()["id"]
    assert await feed.verdict(post_id, "approved")
    return post_id


async def test_threaded_comments_order_depth_cap_and_events(
    content: RunningService, feed, identities: Identities, stream_events, subject_prefix: str
) -> None:
    author, reader = uuid.uuid4(), uuid.uuid4()
    post_id = await _published_post(content, feed, identities, author)
    community_id = (
        await content.client.get(f"/posts/{post_id}", headers=identities.headers(author))
    ).json()["community_id"]
    await feed.member(community_id, reader)
    url = f"/posts/{post_id}/comments"

    async def comment(who, body, parent=None) -> dict:
        r = await content.client.post(
            url, json={"body": body, "parent_id": parent}, headers=identities.headers(who)
        )
        assert r.status_code == 201, r.text
        return r.json()

    first = await comment(reader, f"first, hi @{author}")
    second = await comment(author, "second top-level")
    reply = await comment(author, "reply to first", first["id"])
    nested = await comment(reader, "reply to reply", reply["id"])
    later = await comment(reader, "later reply to first", first["id"])
    r = await content.client.get(url, headers=identities.headers(reader))
    assert r.status_code == 200, r.text
    assert [c["id"] for c in r.json()] == [
        first["id"],
        reply["id"],
        nested["id"],
        later["id"],
        second["id"],
    ]
    assert [c["depth"] for c in r.json()] == [0, 1, 2, 1, 0]

    # The depth cap: build down to MAX_DEPTH, then one more is refused.
    parent = nested
    while parent["depth"] < MAX_DEPTH:
        parent = await comment(reader, "deeper", parent["id"])
    r = await content.client.post(
        url,
        json={"body": "too deep", "parent_id": parent["id"]},
        headers=identities.headers(reader),
    )
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert r.json()["type"] == "urn:hearth:problem:thread-too-deep"

    # Edit and soft delete: only the author edits; the deleted comment keeps its place.
    r = await content.client.patch(
        f"/comments/{first['id']}", json={"body": "edited"}, headers=identities.headers(author)
    )
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    r = await content.client.patch(
        f"/comments/{first['id']}", json={"body": "edited"}, headers=identities.headers(reader)
    )
    assert r.status_code == 200 and r.json()["edited_at"] is not None
    r = await content.client.delete(f"/comments/{first['id']}", headers=identities.headers(reader))
    assert r.status_code == 204
    r = await content.client.get(url, headers=identities.headers(reader))
    assert (
        r.json()[0]["id"] == first["id"] and r.json()[0]["deleted_at"] and r.json()[0]["body"] == ""
    )

    async def events(kind: str) -> list:
        return [
            e
            for e in await stream_events(f"{subject_prefix}.content.{kind}")
            if e.data["post_id"] == post_id
        ]

    created = await eventually(lambda: events("comment.created.v1"))
    assert any(e.data["comment_id"] == first["id"] and e.data["body"] for e in created)
    [mention] = await eventually(lambda: events("mention.created.v1"))
    assert mention.data["mentioned_id"] == str(author)
    [deleted] = await eventually(lambda: events("comment.deleted.v1"))
    assert deleted.data["comment_id"] == first["id"]


async def test_muted_member_refused_with_the_mute_end(
    content: RunningService, feed, identities: Identities
) -> None:
    author, muted = uuid.uuid4(), uuid.uuid4()
    post_id = await _published_post(content, feed, identities, author)
    community_id = (
        await content.client.get(f"/posts/{post_id}", headers=identities.headers(author))
    ).json()["community_id"]
    until = utcnow() + timedelta(hours=3)
    await feed.member(community_id, muted, muted_until=until)
    r = await content.client.post(
        f"/posts/{post_id}/comments", json={"body": "hi"}, headers=identities.headers(muted)
    )
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["type"] == "urn:hearth:problem:muted" and body["muted_until"]
    assert body["muted_until"][:16] == until.isoformat()[:16]
    r = await content.client.put(
        f"/posts/{post_id}/reactions", json={"kind": "like"}, headers=identities.headers(muted)
    )
    assert r.status_code == 403 and r.json()["type"] == "urn:hearth:problem:muted"
    assert r.json()["muted_until"] == body["muted_until"]

    # Banned and removed members are refused too, saying why.
    banned = uuid.uuid4()
    await feed.member(community_id, banned, status="banned")
    r = await content.client.put(
        f"/posts/{post_id}/reactions", json={"kind": "like"}, headers=identities.headers(banned)
    )
    assert r.status_code in (403, 404)  # a banned member of a public community may not react


async def test_concurrent_duplicate_reactions_leave_one(
    content: RunningService, feed, identities: Identities, stream_events, subject_prefix: str
) -> None:
    author, fan = uuid.uuid4(), uuid.uuid4()
    post_id = await _published_post(content, feed, identities, author)
    community_id = (
        await content.client.get(f"/posts/{post_id}", headers=identities.headers(author))
    ).json()["community_id"]
    await feed.member(community_id, fan)
    url = f"/posts/{post_id}/reactions"
    responses = await asyncio.gather(
        *[
            content.client.put(url, json={"kind": "thanks"}, headers=identities.headers(fan))
            for _ in range(8)
        ]
    )
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    async with content.runtime.db.session() as session:
        count = (
            await session.execute(
                select(func.count())
                .select_from(Reaction)
                .where(Reaction.post_id == uuid.UUID(post_id))
            )
        ).scalar_one()
    assert count == 1
    r = await content.client.get(url, headers=identities.headers(fan))
    assert r.json()["counts"] == {"thanks": 1} and r.json()["mine"] == ["thanks"]
    r = await content.client.put(url, json={"kind": "shrug"}, headers=identities.headers(fan))
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    r = await content.client.delete(f"{url}/thanks", headers=identities.headers(fan))
    assert r.status_code == 200 and r.json()["counts"] == {}

    # One reaction.added for the eight racing requests, one reaction.removed (metrics counts them).
    async def announced(fact: str) -> list:
        found = await stream_events(f"{subject_prefix}.content.reaction.{fact}.v1")
        return [e for e in found if e.data["post_id"] == post_id]

    async def both() -> bool:
        return len(await announced("added")) >= 1 and len(await announced("removed")) >= 1

    assert await eventually(both)
    [added], [removed] = await announced("added"), await announced("removed")
    assert added.data["member_id"] == str(fan) and added.data["kind"] == "thanks"
    assert added.data["community_id"] == community_id and removed.data["kind"] == "thanks"


async def test_held_post_takes_no_comments_from_members(
    content: RunningService, feed, identities: Identities
) -> None:
    author, reader = uuid.uuid4(), uuid.uuid4()
    community_id = await feed.community(owner=author)
    await feed.member(community_id, reader)
    r = await content.client.post(
        f"/communities/{community_id}/posts", json=POST, headers=identities.headers(author)
    )
    post_id = r.json()["id"]
    assert await feed.verdict(post_id, "held", ["spam"])
    r = await content.client.post(
        f"/posts/{post_id}/comments", json={"body": "hi"}, headers=identities.headers(reader)
    )
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    r = await content.client.get(f"/posts/{post_id}/reactions", headers=identities.headers(reader))
    assert r.status_code == 404
