"""The content calendar: a post booked for a slot passes review, waits, and goes out once.

The publisher runs inside the service (a background loop); the replica test runs a second
runtime's publisher on the same database at the same moment and shows each post published once.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col

from hearth_content.app import definition
from hearth_content.models import Post, PostStatus
from hearth_content.service import publish_due
from servicekit.ids import utcnow
from servicekit.runtime import ServiceRuntime
from servicekit.testing.harness import Identities, RunningService, eventually

PROBLEM = "application/problem+json"
POST = {"title": "Weekly digest", "body": "What happened this week.", "format": "text"}


async def _status(svc: RunningService, identities: Identities, post_id: str, user: uuid.UUID):
    r = await svc.client.get(f"/posts/{post_id}", headers=identities.headers(user))
    assert r.status_code == 200, r.text
    return r.json()


async def test_a_booked_post_waits_for_its_slot_then_the_publisher_releases_it(
    content: RunningService,
    feed: Any,
    identities: Identities,
    stream_events: Any,
    subject_prefix: str,
) -> None:
    running = [t.get_name() for t in content.runtime._background if not t.done()]
    assert "scheduled_publisher" in running  # the service runs the publisher itself
    author, reader = uuid.uuid4(), uuid.uuid4()
    cid = await feed.community()
    await feed.member(cid, author)
    await feed.member(cid, reader)
    slot = utcnow() + timedelta(seconds=2)
    r = await content.client.post(
        f"/communities/{cid}/posts",
        json={**POST, "publish_at": slot.isoformat()},
        headers=identities.headers(author),
    )
    assert r.status_code == 201, r.text
    post = r.json()
    assert post["status"] == "pending_review" and post["publish_at"] is not None
    assert await feed.verdict(post["id"], "approved")
    scheduled = await _status(content, identities, post["id"], author)
    assert scheduled["status"] == "scheduled" and scheduled["published_at"] is None
    # Until its slot the post is the author's and staff's, not the community's.
    r = await content.client.get(f"/posts/{post['id']}", headers=identities.headers(reader))
    assert r.status_code == 404
    listed = await content.client.get(
        f"/communities/{cid}/posts", headers=identities.headers(reader)
    )
    assert post["id"] not in {p["id"] for p in listed.json()["items"]}

    async def published() -> dict:
        body = await _status(content, identities, post["id"], reader)
        assert body["status"] == "published"
        return body

    out = await eventually(published, timeout=20)
    assert out["published_at"] >= out["publish_at"]  # never before its slot

    def of_post(events: list) -> list:
        return [e for e in events if e.data["post_id"] == post["id"]]

    [booked] = await eventually(
        lambda: _events(stream_events, f"{subject_prefix}.content.post.scheduled.v1", of_post)
    )
    assert booked.type == "hearth.content.post.scheduled.v1"
    assert booked.data["publish_at"].startswith(slot.isoformat()[:19])
    [announced] = await eventually(
        lambda: _events(stream_events, f"{subject_prefix}.content.post.published.v1", of_post)
    )
    assert announced.subject == post["id"]
    await asyncio.sleep(0.6)  # a few more publisher passes: nothing is announced twice
    again = await _events(stream_events, f"{subject_prefix}.content.post.published.v1", of_post)
    assert len(again) == 1


async def _events(stream_events: Any, subject: str, keep: Any) -> list:
    return keep(await stream_events(subject))


async def test_a_slot_that_passed_during_review_publishes_on_approval(
    content: RunningService, feed: Any, identities: Identities
) -> None:
    author = uuid.uuid4()
    cid = await feed.community()
    await feed.member(cid, author)
    slot = utcnow() + timedelta(seconds=1)
    r = await content.client.post(
        f"/communities/{cid}/posts",
        json={**POST, "publish_at": slot.isoformat()},
        headers=identities.headers(author),
    )
    assert r.status_code == 201, r.text
    await asyncio.sleep(1.2)  # review took longer than the slot
    assert await feed.verdict(r.json()["id"], "approved")
    body = await _status(content, identities, r.json()["id"], author)
    assert body["status"] == "published"
    # A held post never goes out, whatever its slot.
    r = await content.client.post(
        f"/communities/{cid}/posts",
        json={**POST, "publish_at": (utcnow() + timedelta(hours=1)).isoformat()},
        headers=identities.headers(author),
    )
    assert await feed.verdict(r.json()["id"], "held", ["spam"])
    assert await publish_due(content.runtime, now=utcnow() + timedelta(hours=2)) == 0
    held = await _status(content, identities, r.json()["id"], author)
    assert held["status"] == "held" and held["published_at"] is None


async def test_bad_slots_are_refused(
    content: RunningService, feed: Any, identities: Identities
) -> None:
    author = uuid.uuid4()
    cid = await feed.community()
    await feed.member(cid, author)
    url = f"/communities/{cid}/posts"
    for slot in (
        (utcnow() - timedelta(minutes=1)).isoformat(),  # the past
        (utcnow() + timedelta(days=400)).isoformat(),  # beyond the calendar's horizon
        "next tuesday",
        "9999-12-31T23:00:00-23:59",  # out of range once in UTC
        12,
    ):
        r = await content.client.post(
            url, json={**POST, "publish_at": slot}, headers=identities.headers(author)
        )
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, (slot, r.text)
    async with content.runtime.db.session() as session:
        count = (await session.execute(select(func.count()).select_from(Post))).scalar_one()
    assert count == 0  # nothing half-stored


async def test_two_replicas_publish_each_due_post_once(
    content: RunningService, feed: Any, identities: Identities
) -> None:
    author = uuid.uuid4()
    cid = await feed.community()
    await feed.member(cid, author)
    ids = []
    for i in range(12):
        r = await content.client.post(
            f"/communities/{cid}/posts",
            json={
                **POST,
                "title": f"Slot {i}",
                "publish_at": (utcnow() + timedelta(hours=1)).isoformat(),
            },
            headers=identities.headers(author),
        )
        assert r.status_code == 201, r.text
        assert await feed.verdict(r.json()["id"], "approved")
        ids.append(r.json()["id"])
    later = utcnow() + timedelta(hours=2)
    # A second replica (own engine and pool) running its publisher at the same moment: on
    # PostgreSQL each pass claims rows with FOR UPDATE SKIP LOCKED on its own connection.
    replica = ServiceRuntime(definition, content.runtime.settings)
    try:
        counts = await asyncio.gather(
            *(publish_due(rt, now=later, batch=4) for rt in (content.runtime, replica, replica))
        )
        counts += [await publish_due(replica, now=later), await publish_due(replica, now=later)]
    finally:
        await replica.db.dispose()
    assert sum(counts) == 12
    tables = content.runtime.tables
    async with content.runtime.db.session() as session:
        posts = (
            (
                await session.execute(
                    select(Post).where(col(Post.id).in_([uuid.UUID(i) for i in ids]))
                )
            )
            .scalars()
            .all()
        )
        announced = (
            await session.execute(
                select(func.count())
                .select_from(tables.outbox)
                .where(tables.outbox.c.event_type == "hearth.content.post.published.v1")
            )
        ).scalar_one()
    assert {p.status for p in posts} == {PostStatus.published}
    assert announced == 12
