"""Posts through content's API, with the membership read model fed by members over real NATS."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select

from hearth_content.models import Membership
from servicekit.ids import utcnow
from servicekit.testing.harness import Identities, RunningService, eventually

PROBLEM = "application/problem+json"
POST = {"title": "Weekly digest", "body": "What happened this week.", "format": "text"}


async def test_member_joins_through_members_then_posts(
    members: RunningService,
    content: RunningService,
    identities: Identities,
    stream_events,
    subject_prefix: str,
) -> None:
    r = await members.client.post(
        "/communities",
        json={"name": "Customers", "kind": "customer"},
        headers=identities.headers(None, "operator"),
    )
    assert r.status_code == 201, r.text
    community_id = r.json()["id"]
    user = uuid.uuid4()
    r = await members.client.post(
        f"/communities/{community_id}/members", headers=identities.headers(user)
    )
    assert r.status_code == 201, r.text

    async def joined() -> bool:
        async with content.runtime.db.session() as session:
            row = await session.get(Membership, (uuid.UUID(community_id), user))
            return row is not None and row.status == "active"

    await eventually(joined)  # content learned it from members' event alone

    url = f"/communities/{community_id}/posts"
    r = await content.client.post(url, json=POST, headers=identities.headers(user))
    assert r.status_code == 201, r.text
    post = r.json()
    assert post["status"] == "pending_review"
    assert post["author_id"] == str(user) and post["community_id"] == community_id
    assert post["published_at"] is None and post["hold_reasons"] == []

    async def submitted() -> list:
        return [
            e
            for e in await stream_events(f"{subject_prefix}.content.post.submitted.v1")
            if e.data["post_id"] == post["id"]
        ]

    [event] = await eventually(submitted)
    assert event.type == "hearth.content.post.submitted.v1" and event.source == "/hearth/content"
    assert event.subject == post["id"]
    assert event.data == {
        "post_id": post["id"],
        "community_id": community_id,
        "author_id": str(user),
        "title": POST["title"],
        "body": POST["body"],
        "format": "text",
        "url": None,
        "submitted_at": event.data["submitted_at"],
        "round": 0,
    }

    # Refusals on the same route.
    r = await content.client.post(url, json=POST, headers=identities.headers(uuid.uuid4()))
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    assert r.json()["type"] == "urn:hearth:problem:not-a-member"
    r = await content.client.post(url, json=POST, headers=identities.headers(None, "operator"))
    assert r.status_code == 403  # staff run communities but post only where they are members
    r = await content.client.post(
        f"/communities/{uuid.uuid4()}/posts", json=POST, headers=identities.headers(user)
    )
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    r = await content.client.post(url, json={"title": ""}, headers=identities.headers(user))
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    r = await content.client.post(url, json=POST)
    assert r.status_code == 401 and r.headers["content-type"] == PROBLEM


async def test_submission_is_validated(
    content: RunningService, feed, identities: Identities
) -> None:
    user = uuid.uuid4()
    community_id = await feed.community(owner=user)
    url = f"/communities/{community_id}/posts"
    headers = identities.headers(user)
    bad = [
        ({"body": "no title", "format": "text"}, "title"),
        ({**POST, "title": "   "}, "title"),
        ({**POST, "title": "t" * 201}, "title"),
        ({**POST, "body": "b" * 20_001}, "body"),
        ({**POST, "format": "poll"}, "format"),
        ({**POST, "body": "  "}, None),
        ({**POST, "url": "https://example.com"}, None),
        ({"title": "Link", "format": "link"}, None),
        ({"title": "Link", "format": "link", "url": "ftp://example.com/x"}, "url"),
        ({"title": "Link", "format": "link", "url": "example.com"}, "url"),
        ({"title": "Video", "format": "video", "url": "https://x/" + "v" * 2048}, "url"),
        ({**POST, "title": 7}, "title"),
    ]
    for body, field in bad:
        r = await content.client.post(url, json=body, headers=headers)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"] == PROBLEM
        if field:
            assert field in {e["loc"][-1] for e in r.json()["errors"]}, (body, r.json())
    r = await content.client.post(url, content=b"{not json", headers=headers)
    assert r.status_code == 422
    r = await content.client.post("/communities/nope/posts", json=POST, headers=headers)
    assert r.status_code == 422
    r = await content.client.post(
        url,
        json={"title": " Clip ", "format": "video", "url": "https://v.example.com/1"},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["title"] == "Clip" and r.json()["body"] == ""


async def test_reading_and_listing_follow_membership_and_review(
    content: RunningService, feed, identities: Identities
) -> None:
    owner, author, reader, outsider = (uuid.uuid4() for _ in range(4))
    community_id = await feed.community(owner=owner)
    await feed.member(community_id, author)
    await feed.member(community_id, reader)
    url = f"/communities/{community_id}/posts"
    ids = []
    for n in range(3):
        r = await content.client.post(
            url, json={**POST, "title": f"Post {n}"}, headers=identities.headers(author)
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    published, held, pending = ids
    assert await feed.verdict(published, "approved")
    assert await feed.verdict(held, "held", ["banned_term:advertising"])

    async def get(post_id: str, who: uuid.UUID | None, *roles: str) -> int:
        r = await content.client.get(f"/posts/{post_id}", headers=identities.headers(who, *roles))
        return r.status_code

    assert await get(published, reader) == 200
    assert await get(held, reader) == 404 and await get(pending, reader) == 404
    assert await get(held, author) == 200 and await get(pending, author) == 200
    assert await get(pending, owner) == 200  # community owners/admins/moderators see all
    assert await get(pending, None, "operator") == 200 and await get(held, None, "admin") == 200
    assert await get(published, outsider) == 404
    assert await get(str(uuid.uuid4()), None, "operator") == 404
    r = await content.client.get(f"/posts/{held}", headers=identities.headers(author))
    assert r.json()["status"] == "held" and r.json()["hold_reasons"] == ["banned_term:advertising"]
    r = await content.client.get(f"/posts/{published}")
    assert r.status_code == 401
    r = await content.client.get("/posts/not-a-uuid", headers=identities.headers(author))
    assert r.status_code == 422

    async def listing(who: uuid.UUID | None, *roles: str, query: str = "") -> list[str]:
        r = await content.client.get(f"{url}{query}", headers=identities.headers(who, *roles))
        assert r.status_code == 200, r.text
        return [p["id"] for p in r.json()["items"]]

    assert await listing(reader) == [published]
    assert await listing(author) == [pending, held, published]  # newest first
    assert await listing(owner) == [pending, held, published]
    assert await listing(None, "operator") == [pending, held, published]
    assert await listing(None, "operator", query="?status=held") == [held]
    assert await listing(reader, query="?status=pending_review") == []
    assert await listing(author, query="?status=pending_review") == [pending]

    first = await content.client.get(f"{url}?limit=2", headers=identities.headers(author))
    assert [p["id"] for p in first.json()["items"]] == [pending, held]
    cursor = first.json()["next_cursor"]
    second = await content.client.get(
        f"{url}?limit=2&cursor={cursor}", headers=identities.headers(author)
    )
    assert [p["id"] for p in second.json()["items"]] == [published]
    assert second.json()["next_cursor"] is None

    r = await content.client.get(url, headers=identities.headers(outsider))
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    r = await content.client.get(
        f"/communities/{uuid.uuid4()}/posts", headers=identities.headers(None, "operator")
    )
    assert r.status_code == 404
    r = await content.client.get(f"{url}?status=bogus", headers=identities.headers(author))
    assert r.status_code == 422
    r = await content.client.get(f"{url}?cursor=!!!", headers=identities.headers(author))
    assert r.status_code == 422
    r = await content.client.get(f"{url}?limit=0", headers=identities.headers(author))
    assert r.status_code == 422
    r = await content.client.get(url)
    assert r.status_code == 401


async def test_verdicts_apply_once(content: RunningService, feed, identities: Identities) -> None:
    author = uuid.uuid4()
    community_id = await feed.community(owner=author)
    headers = identities.headers(author)
    posts = []
    for title in ("approve me", "hold me", "unknown decision"):
        r = await content.client.post(
            f"/communities/{community_id}/posts", json={**POST, "title": title}, headers=headers
        )
        posts.append(r.json()["id"])
    approve, hold, unknown = posts

    assert await feed.verdict(approve, "approved")
    assert await feed.verdict(approve, "approved")  # a second screening event: no second effect
    assert await feed.verdict(approve, "held", ["late"])  # a decided post stays decided
    assert await feed.verdict(hold, "held", ["banned_term:abuse"])
    assert await feed.verdict(unknown, "escalated")  # a decision content does not know yet
    assert await feed.verdict(unknown, "approved", target_type="comment")  # not a post
    assert await feed.verdict(str(uuid.uuid4()), "approved")  # not our post: ignored

    async def status(post_id: str) -> dict:
        return (await content.client.get(f"/posts/{post_id}", headers=headers)).json()

    assert (await status(approve))["status"] == "published"
    assert (await status(approve))["published_at"] is not None
    assert (await status(hold))["status"] == "held"
    assert (await status(hold))["hold_reasons"] == ["banned_term:abuse"]
    assert (await status(unknown))["status"] == "pending_review"

    outbox = content.runtime.tables.outbox
    async with content.runtime.db.session() as session:
        rows = (await session.execute(select(outbox.c.event_type, outbox.c.data))).all()
    published = [d for t, d in rows if t == "hearth.content.post.published.v1"]
    held = [d for t, d in rows if t == "hearth.content.post.held.v1"]
    assert [d["post_id"] for d in published] == [approve]
    assert [d["post_id"] for d in held] == [hold]
    assert held[0]["reasons"] == ["banned_term:abuse"] and held[0]["author_id"] == str(author)


async def test_retried_submission_with_idempotency_key_posts_once(
    content: RunningService, feed, identities: Identities
) -> None:
    author = uuid.uuid4()
    community_id = await feed.community(owner=author)
    url = f"/communities/{community_id}/posts"
    headers = {**identities.headers(author), "Idempotency-Key": "k-1"}
    first = await content.client.post(url, json=POST, headers=headers)
    again = await content.client.post(url, json=POST, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json()["id"] == again.json()["id"]
    assert again.headers.get("idempotent-replayed") == "true"
    r = await content.client.post(url, json={**POST, "title": "other"}, headers=headers)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    outbox = content.runtime.tables.outbox
    async with content.runtime.db.session() as session:
        count = (
            await session.execute(
                select(func.count()).where(
                    outbox.c.event_type == "hearth.content.post.submitted.v1"
                )
            )
        ).scalar_one()
    assert count == 1


async def test_private_muted_and_departed_members_are_refused(
    content: RunningService, feed, identities: Identities
) -> None:
    owner, muted, departed = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    private = await feed.community(visibility="private", owner=owner)
    url = f"/communities/{private}/posts"
    r = await content.client.post(url, json=POST, headers=identities.headers(uuid.uuid4()))
    assert r.status_code == 404  # a private community is not revealed to outsiders
    r = await content.client.get(url, headers=identities.headers(uuid.uuid4()))
    assert r.status_code == 404
    r = await content.client.get(url, headers=identities.headers(None, "operator"))
    assert r.status_code == 200
    r = await content.client.post(url, json=POST, headers=identities.headers(owner))
    assert r.status_code == 201

    # Members' real mute/leave reaching content is tested in test_content_member_lifecycle.py.
    await feed.member(private, muted, muted_until=utcnow() + timedelta(hours=1))
    await feed.member(private, departed)
    await feed.member(private, departed, status="left")
    r = await content.client.post(url, json=POST, headers=identities.headers(muted))
    assert r.status_code == 403 and r.json()["type"] == "urn:hearth:problem:muted"
    r = await content.client.post(url, json=POST, headers=identities.headers(departed))
    assert r.status_code == 404  # no longer a member of a private community
