"""Human review (初审 + 复审): screening first, then the stages; nothing shows before approval."""

from __future__ import annotations

import uuid
from typing import Any

from servicekit.testing.harness import Identities, RunningService, eventually

PROBLEM = "application/problem+json"
POST = {"title": "投稿: weekly notes", "body": "What happened this week.", "format": "text"}


class Community:
    """A community with an owner, an admin, two moderators and two members, review set."""

    def __init__(self, content: RunningService, feed: Any, identities: Identities) -> None:
        self.content, self.feed, self.ids = content, feed, identities
        self.owner, self.admin = uuid.uuid4(), uuid.uuid4()
        self.mod, self.mod2 = uuid.uuid4(), uuid.uuid4()
        self.author, self.reader = uuid.uuid4(), uuid.uuid4()
        self.staff = uuid.uuid4()  # a platform admin, not a member of the community

    async def setup(self, mode: str) -> Community:
        self.id = await self.feed.community(owner=self.owner)
        await self.feed.member(self.id, self.admin, role="admin")
        await self.feed.member(self.id, self.mod, role="moderator")
        await self.feed.member(self.id, self.mod2, role="moderator")
        await self.feed.member(self.id, self.author)
        await self.feed.member(self.id, self.reader)
        r = await self.call("PUT", f"/communities/{self.id}/review-policy", self.owner, mode=mode)
        assert r.status_code == 200, r.text
        return self

    async def call(self, method: str, path: str, user: uuid.UUID, **body: Any) -> Any:
        return await self.content.client.request(
            method, path, headers=self.headers(user), json=body or None
        )

    def headers(self, user: uuid.UUID) -> dict[str, str]:
        return self.ids.headers(user, "admin") if user == self.staff else self.ids.headers(user)

    async def submit(self, author: uuid.UUID | None = None) -> str:
        r = await self.call("POST", f"/communities/{self.id}/posts", author or self.author, **POST)
        assert r.status_code == 201, r.text
        assert await self.feed.verdict(r.json()["id"], "approved")
        return str(r.json()["id"])

    async def visible_to(self, user: uuid.UUID, post_id: str) -> bool:
        one = await self.call("GET", f"/posts/{post_id}", user)
        listed = await self.call("GET", f"/communities/{self.id}/posts", user)
        ids = {p["id"] for p in listed.json()["items"]}
        assert (one.status_code == 200) == (post_id in ids), (one.text, ids)
        return one.status_code == 200

    async def decide(self, post_id: str, user: uuid.UUID, verdict: str, note: str = "ok") -> Any:
        return await self.call(
            "POST", f"/posts/{post_id}/review/decision", user, verdict=verdict, note=note
        )

    async def status(self, post_id: str) -> dict:
        r = await self.call("GET", f"/posts/{post_id}", self.owner)
        assert r.status_code == 200
        return dict(r.json())


async def test_two_stages_keep_a_post_hidden_until_both_approve(
    content: RunningService,
    feed: Any,
    identities: Identities,
    stream_events: Any,
    subject_prefix: str,
) -> None:
    c = await Community(content, feed, identities).setup("two_stages")
    post = await c.submit()
    assert (await c.status(post))["status"] == "in_review"
    assert (await c.status(post))["review_stage"] == 1
    assert not await c.visible_to(c.reader, post)
    assert await c.visible_to(c.author, post)  # the author sees their own post's state
    # A member may not review; the second stage is not a moderator's.
    r = await c.decide(post, c.reader, "approve")
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    r = await c.decide(post, c.author, "approve")
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    r = await c.decide(post, c.mod, "approve", "初审通过")
    assert r.status_code == 201, r.text
    assert (await c.status(post))["review_stage"] == 2
    assert not await c.visible_to(c.reader, post)
    r = await c.decide(post, c.mod2, "approve")
    assert r.status_code == 403  # 复审 is for admins and owners
    # The same person may not decide both stages of one post (platform staff included).
    staff = c.staff
    r = await c.decide(post, staff, "approve")
    assert r.status_code == 201, r.text  # staff may decide any stage…
    post2 = await c.submit()
    r = await c.decide(post2, staff, "approve")
    assert r.status_code == 201
    r = await c.decide(post2, staff, "approve")
    assert r.status_code == 409 and r.json()["type"].endswith("same-reviewer"), r.text
    assert not await c.visible_to(c.reader, post2)
    r = await c.decide(post2, c.admin, "approve", "复审通过")
    assert r.status_code == 201
    assert await c.visible_to(c.reader, post2)
    assert await c.visible_to(c.reader, post)
    history = await c.call("GET", f"/posts/{post2}/review/history", c.author)
    assert [(d["stage"], d["verdict"]) for d in history.json()] == [(1, "approve"), (2, "approve")]
    r = await c.call("GET", f"/posts/{post2}/review/history", c.reader)
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM

    def of_post(events: list) -> list:
        return [e for e in events if e.data["post_id"] == post2]

    decided = await eventually(
        lambda: _two(stream_events, f"{subject_prefix}.content.post.review_decided.v1", of_post)
    )
    assert [e.data["stage"] for e in decided] == [1, 2]
    assert decided[0].data["community_id"] == c.id and decided[0].data["author_id"]
    [approved] = await eventually(
        lambda: _at_least(stream_events, f"{subject_prefix}.content.post.approved.v1", of_post, 1)
    )
    assert approved.data["reviewer_id"] == str(c.admin)


async def _at_least(stream_events: Any, subject: str, keep: Any, n: int) -> list:
    found = keep(await stream_events(subject))
    assert len(found) >= n
    return list(found)


async def _two(stream_events: Any, subject: str, keep: Any) -> list:
    return await _at_least(stream_events, subject, keep, 2)


async def test_one_reviewer_cannot_decide_both_stages(
    content: RunningService, feed: Any, identities: Identities
) -> None:
    c = await Community(content, feed, identities).setup("two_stages")
    post = await c.submit()
    # The owner may decide the first stage too, but then not the second.
    assert (await c.decide(post, c.owner, "approve")).status_code == 201
    r = await c.decide(post, c.owner, "approve")
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
    assert "other stage" in r.json()["detail"]
    assert not await c.visible_to(c.reader, post)
    assert (await c.decide(post, c.admin, "approve")).status_code == 201
    assert await c.visible_to(c.reader, post)


async def test_skip_first_review_goes_straight_to_the_second_stage(
    content: RunningService, feed: Any, identities: Identities
) -> None:
    c = await Community(content, feed, identities).setup("two_stages")
    trusted = uuid.uuid4()
    await feed.member(c.id, trusted, privileges=["skip_first_review"])
    post = await c.submit(trusted)
    body = await c.status(post)
    assert body["status"] == "in_review" and body["review_stage"] == 2
    queue = await c.call("GET", f"/communities/{c.id}/review-queue?stage=1", c.mod)
    assert post not in {i["post_id"] for i in queue.json()}
    assert (await c.decide(post, c.mod, "approve")).status_code == 403
    assert (await c.decide(post, c.admin, "approve")).status_code == 201
    assert await c.visible_to(c.reader, post)
    # Staff of the community skip review entirely.
    own = await c.submit(c.mod)
    assert (await c.status(own))["status"] == "published"


async def test_a_rejected_post_is_never_visible_and_comes_back_on_resubmission(
    content: RunningService,
    feed: Any,
    identities: Identities,
    stream_events: Any,
    subject_prefix: str,
) -> None:
    c = await Community(content, feed, identities).setup("one_stage")
    post = await c.submit()
    r = await c.decide(post, c.mod, "reject", "请补充来源")
    assert r.status_code == 201
    assert (await c.status(post))["status"] == "rejected"
    assert not await c.visible_to(c.reader, post)
    r = await c.decide(post, c.mod2, "approve")
    assert r.status_code == 409  # a rejected post is not in review any more
    [rejected] = await eventually(
        lambda: _at_least(
            stream_events,
            f"{subject_prefix}.content.post.rejected.v1",
            lambda es: [e for e in es if e.data["post_id"] == post],
            1,
        )
    )
    assert rejected.data["reason"] == "请补充来源" and rejected.data["author_id"] == str(c.author)
    r = await c.call("POST", f"/posts/{post}/resubmit", c.reader, body="x")
    assert r.status_code == 404
    r = await c.call("POST", f"/posts/{post}/resubmit", c.author, body="With sources: …")
    assert r.status_code == 200 and r.json()["status"] == "pending_review", r.text
    assert not await c.visible_to(c.reader, post)
    assert await feed.verdict(post, "approved")  # screened again, then review again
    assert (await c.status(post))["status"] == "in_review"
    # The first round's reviewer may decide the new round.
    assert (await c.decide(post, c.mod, "approve", "ok now")).status_code == 201
    assert await c.visible_to(c.reader, post)
    history = (await c.call("GET", f"/posts/{post}/review/history", c.author)).json()
    assert [(d["round"], d["verdict"]) for d in history] == [(0, "reject"), (1, "approve")]


async def test_claims_bulk_and_the_queue(
    content: RunningService, feed: Any, identities: Identities
) -> None:
    c = await Community(content, feed, identities).setup("one_stage")
    posts = [await c.submit() for _ in range(3)]
    r = await c.call("POST", f"/posts/{posts[0]}/review/claim", c.mod)
    assert r.status_code == 200, r.text
    r = await c.call("POST", f"/posts/{posts[0]}/review/claim", c.mod2)
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
    assert (await c.decide(posts[0], c.mod2, "approve")).status_code == 409
    queue = (await c.call("GET", f"/communities/{c.id}/review-queue", c.mod2)).json()
    assert [i["post_id"] for i in queue] == posts  # oldest first
    assert queue[0]["claimed_by"] == str(c.mod) and queue[1]["claimed_by"] is None
    assert all(i["age_seconds"] >= 0 and i["stage"] == 1 for i in queue)
    old = await c.call("GET", f"/communities/{c.id}/review-queue?older_than_minutes=60", c.mod)
    assert old.json() == []
    r = await c.call("GET", f"/communities/{c.id}/review-queue?column_id={uuid.uuid4()}", c.mod)
    assert r.status_code == 200 and r.json() == []  # no post booked into that column
    r = await c.call(
        "POST",
        f"/communities/{c.id}/review/bulk",
        c.mod2,
        post_ids=posts,
        verdict="approve",
        note="bulk",
    )
    assert r.status_code == 200, r.text
    assert r.json()["decided"] == posts[1:] and list(r.json()["refused"]) == [posts[0]]
    assert (await c.call("DELETE", f"/posts/{posts[0]}/review/claim", c.mod)).status_code == 204
    assert (await c.decide(posts[0], c.mod2, "approve")).status_code == 201
    assert all([await c.visible_to(c.reader, p) for p in posts])


async def test_review_routes_refuse_members_and_outsiders(
    content: RunningService, feed: Any, identities: Identities
) -> None:
    c = await Community(content, feed, identities).setup("one_stage")
    post = await c.submit()
    outsider = uuid.uuid4()
    cid = c.id
    refusals = [
        ("PUT", f"/communities/{cid}/review-policy", c.mod, {"mode": "off"}, 403),
        ("PUT", f"/communities/{cid}/review-policy", c.reader, {"mode": "off"}, 403),
        ("GET", f"/communities/{cid}/review-policy", c.reader, None, 403),
        ("GET", f"/communities/{cid}/review-queue", c.reader, None, 403),
        ("GET", f"/communities/{cid}/review-queue", outsider, None, 403),
        ("POST", f"/posts/{post}/review/claim", c.reader, None, 403),
        ("POST", f"/posts/{post}/review/claim", outsider, None, 404),
        ("DELETE", f"/posts/{post}/review/claim", c.reader, None, 404),
        (
            "POST",
            f"/posts/{post}/review/decision",
            c.reader,
            {"verdict": "approve", "note": "x"},
            403,
        ),
        ("POST", f"/posts/{post}/review/decision", c.mod, {"verdict": "approve"}, 422),
        (
            "POST",
            f"/communities/{cid}/review/bulk",
            c.reader,
            {"post_ids": [post], "verdict": "approve", "note": "x"},
            403,
        ),
        ("POST", f"/posts/{post}/resubmit", c.mod, {"body": "x"}, 404),
        ("POST", f"/posts/{post}/resubmit", c.author, {"body": "x"}, 409),
        ("GET", f"/posts/{post}/review/history", c.reader, None, 404),
    ]
    for method, path, user, body, code in refusals:
        r = await content.client.request(method, path, headers=identities.headers(user), json=body)
        assert r.status_code == code, (method, path, r.status_code, r.text)
        assert r.headers["content-type"] == PROBLEM, (method, path)
    assert (await c.status(post))["status"] == "in_review"


async def test_a_resubmission_is_screened_again_by_the_real_moderation(
    content: RunningService, feed: Any, identities: Identities, launch: Any
) -> None:
    """Over real NATS: moderation screens each round, so a revised post re-enters review."""
    from hearth_moderation.app import definition as moderation

    await launch(moderation)
    c = await Community(content, feed, identities).setup("one_stage")
    r = await c.call("POST", f"/communities/{c.id}/posts", c.author, **POST)
    assert r.status_code == 201, r.text
    post = str(r.json()["id"])

    async def status_is(wanted: str) -> bool:
        return (await c.status(post))["status"] == wanted

    await eventually(lambda: status_is("in_review"), timeout=20)
    assert (await c.decide(post, c.mod, "reject", "请补充来源")).status_code == 201
    r = await c.call("POST", f"/posts/{post}/resubmit", c.author, body="With sources: …")
    assert r.status_code == 200, r.text
    await eventually(lambda: status_is("in_review"), timeout=20)  # round 1 screened
    assert (await c.decide(post, c.mod, "approve", "ok now")).status_code == 201
    assert await c.visible_to(c.reader, post)
