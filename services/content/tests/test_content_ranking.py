"""Views once per member per day across replicas, hot ranking, unanswered, first response."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import func, select

from hearth_content.app import definition
from hearth_content.consumers import memberships, screening
from hearth_content.models import Post
from hearth_content.ranking.models import PostView
from hearth_content.ranking.service import buffer_of, flush_views
from servicekit.events import Envelope
from servicekit.ids import utcnow, uuid7
from servicekit.testing.harness import Identities, RunningService, eventually
from servicekit.testing.membership import Snapshots

POST = {"title": "Weekly digest", "body": "What happened this week.", "format": "text"}


async def _published(
    service: RunningService, feed: Any, identities: Identities, community_id: str, author, **extra
) -> str:
    r = await service.client.post(
        f"/communities/{community_id}/posts",
        json={**POST, **extra},
        headers=identities.headers(author),
    )
    assert r.status_code == 201, r.text
    assert await feed.verdict(r.json()["id"], "approved")
    return r.json()["id"]


async def test_views_count_once_per_member_per_day_across_two_replicas(
    launch: Any, backends: Any, identities: Identities, stream_events, subject_prefix: str
) -> None:
    url = backends.database_url("content")
    # Two replicas on one database; the flush tick is long, so the test flushes by hand.
    one = await launch(definition, database_url=url, views_flush_seconds=300)
    two = await launch(definition, database_url=url, views_flush_seconds=300)
    runtime, snaps = one.runtime, Snapshots()
    owner, alice, bob, community = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert await memberships.handle(runtime.db, runtime.tables, snaps.community(community, owner))
    for user, role in ((owner, "owner"), (alice, "member"), (bob, "member")):
        snapshot = snaps.membership(community, user, role=role)
        assert await memberships.handle(runtime.db, runtime.tables, snapshot)
    community_id = str(community)
    r = await one.client.post(
        f"/communities/{community_id}/posts", json=POST, headers=identities.headers(owner)
    )
    post = r.json()["id"]
    assert await screening.handle(runtime.db, runtime.tables, _approved(post))

    async def read(service: RunningService, who: uuid.UUID) -> None:
        r = await service.client.get(f"/posts/{post}", headers=identities.headers(who))
        assert r.status_code == 200, r.text

    await asyncio.gather(
        *(read(one, alice) for _ in range(3)), *(read(two, alice) for _ in range(2)), read(two, bob)
    )
    assert len(buffer_of(one.runtime).seen) == 1  # three page views, one buffered view
    assert len(buffer_of(two.runtime).seen) == 2
    counted = await asyncio.gather(flush_views(one.runtime), flush_views(two.runtime))
    assert sorted(counted) in ([0, 2], [1, 1], [1, 2]) and sum(counted) == 2
    assert await flush_views(one.runtime) == 0  # nothing left buffered
    await read(one, alice)  # again today: buffered, but the database already has it
    assert await flush_views(one.runtime) == 0
    async with one.runtime.db.session() as session:
        row = await session.get(Post, uuid.UUID(post))
        assert row is not None and row.view_count == 2
        rows = (await session.execute(select(func.count()).select_from(PostView))).scalar_one()
        assert rows == 2
    r = await two.client.get(f"/posts/{post}", headers=identities.headers(owner))
    assert r.json()["view_count"] == 2

    async def counted_events() -> list | None:
        events = await stream_events(f"{subject_prefix}.content.views.counted.v1")
        items = [i for e in events for i in e.data["posts"] if i["post_id"] == post]
        return items if sum(i["views"] for i in items) >= 2 else None

    items = await eventually(counted_events)
    assert sum(i["views"] for i in items) == 2  # one event per flush that counted any
    assert {i["community_id"] for i in items} == {community_id}


async def test_hot_ranking_keyset_pages_and_moves_with_engagement(
    content: RunningService, feed: Any, identities: Identities
) -> None:
    owner, reader = uuid.uuid4(), uuid.uuid4()
    community_id = await feed.community(owner=owner)
    await feed.member(community_id, reader)
    older = await _published(content, feed, identities, community_id, owner)
    newer = await _published(content, feed, identities, community_id, owner)
    url = f"/communities/{community_id}/hot"
    r = await content.client.get(url, headers=identities.headers(reader))
    assert r.status_code == 200, r.text
    assert [p["id"] for p in r.json()["items"]] == [newer, older]  # no engagement: newer first

    r = await content.client.put(
        f"/posts/{older}/reactions", json={"kind": "like"}, headers=identities.headers(reader)
    )
    assert r.status_code == 200, r.text
    r = await content.client.post(
        f"/posts/{older}/comments", json={"body": "great"}, headers=identities.headers(reader)
    )
    assert r.status_code == 201, r.text
    first = await content.client.get(url, params={"limit": 1}, headers=identities.headers(reader))
    page = first.json()
    assert [p["id"] for p in page["items"]] == [older] and page["next_cursor"]
    assert page["items"][0]["reaction_count"] == 1 and page["items"][0]["comment_count"] == 1
    rest = await content.client.get(
        url, params={"limit": 1, "cursor": page["next_cursor"]}, headers=identities.headers(reader)
    )
    assert [p["id"] for p in rest.json()["items"]] == [newer]
    assert rest.json()["next_cursor"] is None
    # Taking the reaction back lowers the score again (but the comment keeps it ahead).
    r = await content.client.delete(
        f"/posts/{older}/reactions/like", headers=identities.headers(reader)
    )
    assert r.json()["counts"] == {}
    r = await content.client.get(f"/posts/{older}", headers=identities.headers(reader))
    assert r.json()["reaction_count"] == 0
    bad = await content.client.get(
        url, params={"cursor": "eyJ4IjoxfQ"}, headers=identities.headers(reader)
    )
    assert bad.status_code == 422
    r = await content.client.get(url, headers=identities.headers(uuid.uuid4()))
    assert r.status_code in (403, 404)


async def test_unanswered_until_someone_else_replies_and_time_to_first_response(
    content: RunningService, feed: Any, identities: Identities, stream_events, subject_prefix: str
) -> None:
    owner, asker, helper = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    community_id = await feed.community(owner=owner)
    for user in (asker, helper):
        await feed.member(community_id, user)
    question = await _published(content, feed, identities, community_id, asker, kind="question")
    article = await _published(content, feed, identities, community_id, asker)
    url = f"/communities/{community_id}/unanswered"

    async def unanswered() -> list[str]:
        r = await content.client.get(url, headers=identities.headers(helper))
        assert r.status_code == 200, r.text
        return [p["id"] for p in r.json()["items"]]

    assert await unanswered() == [question]  # an article is not waiting for an answer
    r = await content.client.post(
        f"/posts/{question}/comments", json={"body": "bump"}, headers=identities.headers(asker)
    )
    assert r.status_code == 201
    assert await unanswered() == [question]  # the author's own reply does not answer it
    r = await content.client.post(
        f"/posts/{question}/comments", json={"body": "try this"}, headers=identities.headers(helper)
    )
    assert r.status_code == 201
    answer = r.json()["id"]
    assert await unanswered() == []
    got = (await content.client.get(f"/posts/{question}", headers=identities.headers(asker))).json()
    assert got["first_response_at"] is not None and got["first_response_seconds"] >= 0
    assert got["comment_count"] == 2
    r = await content.client.get(f"/posts/{article}", headers=identities.headers(asker))
    assert r.json()["first_response_at"] is None

    async def created() -> list | None:
        events = await stream_events(f"{subject_prefix}.content.comment.created.v1")
        mine = [e for e in events if e.data["post_id"] == question]
        return mine if len(mine) == 2 else None

    events = await eventually(created)
    firsts = {e.data["comment_id"]: e.data["first_response_seconds"] for e in events}
    assert firsts[answer] == got["first_response_seconds"]
    assert [v for k, v in firsts.items() if k != answer] == [None]


def _approved(post_id: str) -> Envelope:
    return Envelope(
        id=uuid7(),
        source="/hearth/moderation",
        type="hearth.moderation.screening.completed.v1",
        time=utcnow(),
        data={
            "screening_id": str(uuid7()),
            "target_type": "post",
            "target_id": post_id,
            "community_id": str(uuid.uuid4()),
            "decision": "approved",
            "reasons": [],
            "screened_at": utcnow().isoformat(),
        },
    )
