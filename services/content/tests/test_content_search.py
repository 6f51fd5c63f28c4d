"""Search over posts and comments: Chinese by segmented word, English by stem, visibility kept."""

from __future__ import annotations

import uuid

from servicekit.testing.harness import Identities, RunningService

PROBLEM = "application/problem+json"


async def _post(content: RunningService, identities: Identities, community: str, who, **body):
    body = {"format": "text"} | body
    r = await content.client.post(
        f"/communities/{community}/posts", json=body, headers=identities.headers(who)
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def test_search_chinese_english_and_visibility(
    content: RunningService, feed, identities: Identities
) -> None:
    author, reader, moderator = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    community = await feed.community(owner=author, visibility="private")
    await feed.member(community, reader)
    await feed.member(community, moderator, role="moderator")
    zh = await _post(
        content,
        identities,
        community,
        author,
        title="周末活动",
        body="我们今天在北京大学讨论了机器学习的未来发展方向。",
    )
    en = await _post(
        content, identities, community, author, title="Club news", body="We run every Sunday."
    )
    held = await _post(
        content,
        identities,
        community,
        author,
        title="Secret plans",
        body="Buy cheap watches, run now",
    )
    assert await feed.verdict(zh, "approved")
    assert await feed.verdict(en, "approved")
    assert await feed.verdict(held, "held", ["spam"])

    async def search(who, **params) -> list[dict]:
        r = await content.client.get("/search", params=params, headers=identities.headers(who))
        assert r.status_code == 200, r.text
        return r.json()

    # A word from the middle of a Chinese sentence.
    hits = await search(reader, q="机器学习")
    assert [h["post_id"] for h in hits] == [zh]
    assert "<mark>" in hits[0]["snippet"] and "机器" in hits[0]["snippet"]
    assert [h["post_id"] for h in await search(reader, q="北京")] == [zh]
    # An English stem: "running" finds "run"; the held post stays hidden from members.
    hits = await search(reader, q="running")
    assert [h["post_id"] for h in hits] == [en], hits
    assert "<mark>run</mark>" in hits[0]["snippet"]
    # Its author and the community's moderator do find the held post.
    assert held in [h["post_id"] for h in await search(moderator, q="running")]
    assert held in [h["post_id"] for h in await search(author, q="watches")]
    assert await search(reader, q="watches") == []
    # Filters: community, author, format.
    assert await search(reader, q="running", community_id=str(uuid.uuid4())) == []
    assert await search(reader, q="running", author_id=str(uuid.uuid4())) == []
    assert await search(reader, q="running", format="link") == []
    # A stranger to the private community finds nothing in it.
    assert await search(uuid.uuid4(), q="running") == []

    # Comments are found too, under their post's visibility.
    r = await content.client.post(
        f"/posts/{en}/comments",
        json={"body": "我也想参加跑步俱乐部"},
        headers=identities.headers(reader),
    )
    assert r.status_code == 201, r.text
    hits = await search(reader, q="俱乐部")
    assert [(h["kind"], h["post_id"]) for h in hits] == [("comment", en)]
    r = await content.client.delete(
        f"/comments/{hits[0]['id']}", headers=identities.headers(reader)
    )
    assert r.status_code == 204
    assert await search(reader, q="俱乐部") == []

    r = await content.client.get("/search", params={"q": "!!"}, headers=identities.headers(reader))
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM


async def test_search_page_not_emptied_by_better_matches_elsewhere(
    content: RunningService, feed, identities: Identities, monkeypatch
) -> None:
    """Filters and visibility apply inside the ranked query, not to a global top-N after it."""
    from hearth_content.search import service as search_service

    # Few candidates, so the old "rank globally, then filter" order would have lost the post.
    monkeypatch.setattr(search_service, "CANDIDATES", 2)
    monkeypatch.setattr(search_service, "RECENT_WINDOW", 2)
    owner, reader = uuid.uuid4(), uuid.uuid4()
    mine = await feed.community(owner=owner, visibility="private")
    elsewhere = await feed.community(owner=owner, visibility="private")
    await feed.member(mine, reader)
    for _ in range(3):  # more relevant (the word three times), but unreadable
        other = await _post(
            content, identities, elsewhere, owner, title="garden", body="garden garden garden"
        )
        assert await feed.verdict(other, "approved")
    post = await _post(content, identities, mine, owner, title="Notes", body="our garden")
    assert await feed.verdict(post, "approved")
    r = await content.client.get(
        "/search", params={"q": "garden"}, headers=identities.headers(reader)
    )
    assert r.status_code == 200, r.text
    assert [h["post_id"] for h in r.json()] == [post]
