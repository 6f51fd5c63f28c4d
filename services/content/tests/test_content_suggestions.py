"""Suggestion box (意见箱): one vote per member under concurrency, the status workflow (409s name
the allowed moves), merges that carry votes over without counting anyone twice, official
replies, and author and voters told of every change, end to end into members' inbox.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from hearth_content.app import definition
from hearth_content.consumers import memberships
from hearth_content.models import Membership
from hearth_content.suggestions import service as suggestions
from hearth_content.suggestions.models import SuggestionVote
from servicekit.ids import utcnow
from servicekit.testing.harness import Identities, RunningService, eventually

PROBLEM = "application/problem+json"


class Box:
    """A community with an owner, a moderator, voters, and one of each refused kind."""

    def __init__(self, content: RunningService, feed: Any, identities: Identities) -> None:
        self.content, self.feed, self.ids = content, feed, identities
        self.owner, self.mod, self.author = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        self.voters = [uuid.uuid4() for _ in range(6)]
        self.muted, self.removed, self.banned = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        self.stranger, self.staff = uuid.uuid4(), uuid.uuid4()

    async def setup(self, visibility: str = "private") -> Box:
        self.id = await self.feed.community(owner=self.owner, visibility=visibility)
        await self.feed.member(self.id, self.mod, role="moderator")
        for user in (self.author, *self.voters):
            await self.feed.member(self.id, user)
        self.mute_end = utcnow() + timedelta(hours=2)
        await self.feed.member(self.id, self.muted, muted_until=self.mute_end)
        await self.feed.member(self.id, self.removed, status="removed")
        await self.feed.member(self.id, self.banned, status="banned")
        return self

    async def call(self, method: str, path: str, user: uuid.UUID, body: Any = None) -> Any:
        headers = self.ids.headers(user, "admin") if user == self.staff else self.ids.headers(user)
        return await self.content.client.request(method, path, headers=headers, json=body)

    async def idea(self, title: str = "每月一次线下聚会", author: uuid.UUID | None = None) -> str:
        r = await self.call(
            "POST",
            f"/communities/{self.id}/suggestions",
            author or self.author,
            {"title": title, "body": "Meet in person once a month."},
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    async def vote(self, idea: str, user: uuid.UUID) -> Any:
        return await self.call("PUT", f"/suggestions/{idea}/votes/me", user)

    async def move(self, idea: str, status: str, user: uuid.UUID | None = None, **more: Any) -> Any:
        return await self.call(
            "POST", f"/suggestions/{idea}/status", user or self.mod, {"status": status, **more}
        )

    async def get(self, idea: str, user: uuid.UUID | None = None) -> dict:
        r = await self.call("GET", f"/suggestions/{idea}", user or self.owner)
        assert r.status_code == 200, r.text
        return dict(r.json())


async def test_the_workflow_and_its_refused_moves(
    content: RunningService,
    feed: Any,
    identities: Identities,
    stream_events: Any,
    subject_prefix: str,
) -> None:
    box = await Box(content, feed, identities).setup()
    idea = await box.idea()
    assert (await box.get(idea))["status"] == "new"
    r = await box.move(idea, "done")
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM, r.text
    body = r.json()
    assert body["type"].endswith(":invalid-transition")
    assert body["allowed"] == ["under_review", "declined", "merged"] and body["current"] == "new"
    assert "under_review, declined, merged" in body["detail"]
    # A member (even the author) moves nothing; declining needs a reason.
    r = await box.move(idea, "under_review", box.author)
    assert r.status_code == 403, r.text
    r = await box.move(idea, "declined")
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, r.text
    r = await box.move(idea, "merged")
    assert r.status_code == 422, r.text  # merging names the idea it goes into
    for status in ("under_review", "accepted", "done"):
        r = await box.move(idea, status, box.staff if status == "done" else None)
        assert r.status_code == 200 and r.json()["status"] == status, r.text
    r = await box.move(idea, "declined", reason="too late")
    assert r.status_code == 409 and r.json()["allowed"] == [], r.text
    assert "none: it is final" in r.json()["detail"]

    async def announced() -> bool:
        changed = await stream_events(f"{subject_prefix}.content.suggestion.status_changed.v1")
        moves = [(e.data["from_status"], e.data["status"]) for e in changed]
        accepted = await stream_events(f"{subject_prefix}.content.suggestion.accepted.v1")
        return moves == [
            ("new", "under_review"),
            ("under_review", "accepted"),
            ("accepted", "done"),
        ] and [e.data["suggestion_id"] for e in accepted] == [idea]

    await eventually(announced, timeout=10)


async def test_one_vote_per_member_under_concurrency(
    launch: Any, any_database_url: str, feed_for: Any, identities: Identities
) -> None:
    """30 simultaneous votes by one member leave one vote; 6 members voting at once leave six;
    on SQLite and PostgreSQL."""
    content = await launch(definition, database_url=any_database_url)
    box = await Box(content, feed_for(content), identities).setup()
    idea = await box.idea()
    results = await asyncio.gather(*(box.vote(idea, box.voters[0]) for _ in range(30)))
    assert {r.status_code for r in results} == {200}, [r.text for r in results]
    assert (await box.get(idea))["vote_count"] == 1
    results = await asyncio.gather(*(box.vote(idea, v) for v in box.voters for _ in range(3)))
    assert {r.status_code for r in results} == {200}
    assert (await box.get(idea))["vote_count"] == 6
    assert (await box.get(idea, box.voters[1]))["voted"] is True
    assert (await box.get(idea, box.author))["voted"] is False
    r = await box.call("DELETE", f"/suggestions/{idea}/votes/me", box.voters[1])
    assert r.status_code == 200 and r.json()["vote_count"] == 5 and not r.json()["voted"]
    r = await box.call("DELETE", f"/suggestions/{idea}/votes/me", box.voters[1])
    assert r.status_code == 200 and r.json()["vote_count"] == 5  # idempotent
    async with content.runtime.db.session() as session:
        stmt = select(SuggestionVote).where(col(SuggestionVote.suggestion_id) == uuid.UUID(idea))
        assert len((await session.exec(stmt)).all()) == 5
    assert (await box.move(idea, "declined", reason="场地不够")).status_code == 200
    r = await box.vote(idea, box.voters[1])
    assert r.status_code == 409 and r.json()["type"].endswith(":suggestion-closed"), r.text


async def test_a_merge_carries_votes_over_without_counting_anyone_twice(
    content: RunningService, feed: Any, identities: Identities
) -> None:
    box = await Box(content, feed, identities).setup()
    a, b = await box.idea("More meetups"), await box.idea("线下活动", author=box.voters[5])
    v = box.voters
    for voter in (v[0], v[1], v[2]):
        assert (await box.vote(a, voter)).status_code == 200
    for voter in (v[2], v[3]):
        assert (await box.vote(b, voter)).status_code == 200
    assert (await box.move(a, "merged", merged_into_id=a)).status_code == 409  # into itself
    declined = await box.idea("Old idea")
    assert (await box.move(declined, "declined", reason="dup")).status_code == 200
    r = await box.move(a, "merged", merged_into_id=declined)
    assert r.status_code == 409 and r.json()["type"].endswith(":merge-target-closed"), r.text
    other = await Box(content, feed, identities).setup()
    elsewhere = await other.idea()
    assert (await box.move(a, "merged", merged_into_id=elsewhere)).status_code == 404
    r = await box.move(a, "merged", merged_into_id=b)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "merged" and r.json()["merged_into_id"] == b
    target = await box.get(b)
    assert target["vote_count"] == 4  # v0, v1, v2 (once, though they voted on both), v3
    for voter in (v[0], v[1], v[2], v[3]):
        assert (await box.get(b, voter))["voted"] is True
    # The merged idea takes no more votes and says where they go; the target still does.
    r = await box.vote(a, v[4])
    assert r.status_code == 409 and r.json()["merged_into_id"] == b, r.text
    assert (await box.vote(b, v[4])).json()["vote_count"] == 5
    assert (await box.vote(b, v[0])).json()["vote_count"] == 5  # a carried vote is a vote
    r = await box.call("GET", f"/communities/{box.id}/suggestions?status=merged", box.voters[0])
    assert [s["id"] for s in r.json()["items"]] == [a]


async def test_votes_racing_a_merge_are_carried_over_or_refused_never_lost(
    launch: Any, any_database_url: str, feed_for: Any, identities: Identities
) -> None:
    """Votes on A sent while A is merged into B: each vote that succeeded counts on B, each
    that came after the merge is refused (409), and B counts every voter once."""
    content = await launch(definition, database_url=any_database_url)
    box = await Box(content, feed_for(content), identities).setup()
    a, b = await box.idea("A"), await box.idea("B")
    early, late = box.voters[:2], box.voters[2:]
    for voter in early:
        assert (await box.vote(a, voter)).status_code == 200
    assert (await box.vote(b, early[0])).status_code == 200
    racing = [box.vote(a, v) for v in late]
    merge = box.move(a, "merged", merged_into_id=b)
    *votes, merged = await asyncio.gather(*racing, merge)
    assert merged.status_code == 200, merged.text
    assert {r.status_code for r in votes} <= {200, 409}, [r.text for r in votes]
    landed = [v for v, r in zip(late, votes, strict=True) if r.status_code == 200]
    for r in votes:
        if r.status_code == 409:
            assert r.json()["merged_into_id"] == b
    target = await box.get(b)
    assert target["vote_count"] == len(early) + len(landed), (target, landed)
    for voter in (*early, *landed):
        assert (await box.get(b, voter))["voted"] is True


async def test_a_change_names_every_voter_once_in_batches_never_the_author(
    content: RunningService,
    feed: Any,
    identities: Identities,
    stream_events: Any,
    subject_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    box = await Box(content, feed, identities).setup()
    idea = await box.idea()
    for voter in (box.author, *box.voters[:5]):  # the author votes for their own idea too
        assert (await box.vote(idea, voter)).status_code == 200
    monkeypatch.setattr(suggestions, "VOTERS_PER_EVENT", 2)
    r = await box.move(idea, "declined", reason="预算不足")
    assert r.status_code == 200 and r.json()["reason"] == "预算不足"

    async def three() -> list[dict]:
        events = await stream_events(f"{subject_prefix}.content.suggestion.status_changed.v1")
        found = [e.data for e in events if e.data["suggestion_id"] == idea]
        return found if len(found) == 3 else []

    await eventually(three, timeout=10)
    batches = sorted(await three(), key=lambda e: e["batch"])
    assert [(e["batch"], e["batches"]) for e in batches] == [(0, 3), (1, 3), (2, 3)]
    named = [v for e in batches for v in e["voter_ids"]]
    assert sorted(named) == sorted(str(v) for v in box.voters[:5])  # each once, no author
    assert all(len(e["voter_ids"]) <= 2 for e in batches)
    assert {(e["author_id"], e["status"], e["reason"], e["voters"]) for e in batches} == {
        (str(box.author), "declined", "预算不足", 6)
    }


async def test_replies_and_who_may_do_what(
    content: RunningService, feed: Any, identities: Identities
) -> None:
    box = await Box(content, feed, identities).setup()
    idea = await box.idea()
    r = await box.call("POST", f"/suggestions/{idea}/replies", box.mod, {"body": "我们在评估"})
    assert r.status_code == 201, r.text
    r = await box.call("POST", f"/suggestions/{idea}/replies", box.staff, {"body": "Noted."})
    assert r.status_code == 201, r.text
    r = await box.call("POST", f"/suggestions/{idea}/replies", box.author, {"body": "me too"})
    assert r.status_code == 403, r.text  # official replies are the team's
    r = await box.call("POST", f"/suggestions/{idea}/replies", box.mod, {"body": "  "})
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    r = await box.call("GET", f"/suggestions/{idea}/replies", box.voters[0])
    assert [x["body"] for x in r.json()] == ["我们在评估", "Noted."]
    # Muted, removed, banned: 403 saying why (and the mute's end); strangers: 404.
    for path, body in (
        (f"/communities/{box.id}/suggestions", {"title": "x"}),
        (f"/suggestions/{idea}/votes/me", None),
    ):
        method = "POST" if body else "PUT"
        r = await box.call(method, path, box.muted, body)
        assert r.status_code == 403 and r.json()["muted_until"] == box.mute_end.isoformat()
        for user, slug in ((box.removed, "removed"), (box.banned, "banned")):
            r = await box.call(method, path, user, body)
            assert r.status_code == 403 and r.json()["type"].endswith(f":{slug}"), r.text
        r = await box.call(method, path, box.stranger, body)
        assert r.status_code == 404, r.text
    assert (await box.call("GET", f"/suggestions/{idea}", box.stranger)).status_code == 404
    r = await box.call("GET", f"/communities/{box.id}/suggestions", box.stranger)
    assert r.status_code == 404
    # An archived community is read-only, for the team as well.
    snapshot = feed.snapshots.community(uuid.UUID(box.id), box.owner, archived=True)
    assert await feed.deliver(memberships, snapshot)
    assert (await box.vote(idea, box.voters[0])).status_code == 409
    r = await box.move(idea, "under_review")
    assert r.status_code == 409 and r.json()["type"].endswith(":community-archived")
    r = await box.move(idea, "under_review", box.staff)
    assert r.status_code == 409
    assert (await box.get(idea, box.voters[0]))["status"] == "new"


async def test_a_declined_suggestion_reaches_author_and_voters_in_members_inbox(
    members: RunningService, content: RunningService, identities: Identities
) -> None:
    """Both services over real NATS: members' snapshots make the community and its members in
    content; content's status_changed puts the decline and its reason in members' inbox."""
    operator = uuid.uuid4()
    r = await members.client.post(
        "/communities",
        json={"name": "Makers", "kind": "customer"},
        headers=identities.headers(operator, "operator"),
    )
    assert r.status_code == 201, r.text
    community = r.json()["id"]
    author, v1, v2, bystander = (uuid.uuid4() for _ in range(4))
    for who in (author, v1, v2, bystander):
        r = await members.client.post(
            f"/communities/{community}/members", headers=identities.headers(who)
        )
        assert r.status_code == 201, r.text

    async def joined() -> bool:
        async with content.runtime.db.session() as session:
            rows = [
                await session.get(Membership, (uuid.UUID(community), who))
                for who in (operator, author, v1, v2)
            ]
        return all(row is not None and row.status == "active" for row in rows)

    await eventually(joined, timeout=20)

    async def call(method: str, path: str, user: uuid.UUID, body: Any = None) -> Any:
        return await content.client.request(
            method, path, headers=identities.headers(user), json=body
        )

    r = await call(
        "POST", f"/communities/{community}/suggestions", author, {"title": "开放周末场地"}
    )
    assert r.status_code == 201, r.text
    idea = r.json()["id"]
    for voter in (v1, v2):
        assert (await call("PUT", f"/suggestions/{idea}/votes/me", voter)).status_code == 200
    r = await call(
        "POST",
        f"/suggestions/{idea}/status",
        operator,  # the community's owner
        {"status": "declined", "reason": "周末没有管理员值班"},
    )
    assert r.status_code == 200, r.text

    async def inbox(user: uuid.UUID) -> list[dict]:
        r = await members.client.get("/me/notifications", headers=identities.headers(user))
        return [n for n in r.json()["items"] if n["kind"] == "suggestion.status_changed"]

    async def everyone_told() -> bool:
        return all([await inbox(u) for u in (author, v1, v2)])

    await eventually(everyone_told, timeout=20)
    [mine] = await inbox(author)
    assert mine["title"] == "Your suggestion was declined"
    assert "周末没有管理员值班" in mine["body"] and mine["data"]["suggestion_id"] == idea
    for voter in (v1, v2):
        [note] = await inbox(voter)
        assert note["title"] == "A suggestion you voted for was declined"
        assert note["community_id"] == community
    assert await inbox(bystander) == []
