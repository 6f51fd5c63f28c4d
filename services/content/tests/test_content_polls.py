"""Polls through content's API, over real NATS and the real database (PostgreSQL and SQLite)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from hearth_content.app import definition
from hearth_content.consumers import memberships
from hearth_content.polls.models import PollBallot, PollChoice
from hearth_content.polls.service import close_due
from servicekit.ids import utcnow
from servicekit.testing.harness import Identities, RunningService, eventually
from servicekit.testing.membership import Snapshots

PROBLEM = "application/problem+json"


async def _community(feed: Any, *users: uuid.UUID, owner: uuid.UUID) -> str:
    community_id = await feed.community(owner=owner)
    for user in users:
        await feed.member(community_id, user)
    return community_id


async def _poll(
    service: RunningService, identities: Identities, community_id: str, who: uuid.UUID, **fields
) -> dict:
    body = {"question": "Which day?", "options": ["Mon", "Tue", "Wed"], **fields}
    r = await service.client.post(
        f"/communities/{community_id}/polls", json=body, headers=identities.headers(who)
    )
    assert r.status_code == 201, r.text
    return r.json()


async def _vote(
    service: RunningService, identities: Identities, poll: dict, who: uuid.UUID, *picks: int
) -> Any:
    ids = [poll["options"][i]["id"] for i in picks]
    return await service.client.put(
        f"/polls/{poll['id']}/vote", json={"option_ids": ids}, headers=identities.headers(who)
    )


async def _counts(service: RunningService, poll_id: str) -> tuple[int, int]:
    async with service.runtime.db.session() as session:
        pid = uuid.UUID(poll_id)
        ballots = (
            await session.execute(
                select(func.count()).select_from(PollBallot).where(PollBallot.poll_id == pid)
            )
        ).scalar_one()
        choices = (
            await session.execute(
                select(func.count()).select_from(PollChoice).where(PollChoice.poll_id == pid)
            )
        ).scalar_one()
    return int(ballots), int(choices)


async def test_a_named_poll_counts_one_vote_and_shows_results_on_vote(
    content: RunningService, feed: Any, identities: Identities, stream_events, subject_prefix: str
) -> None:
    owner, alice, bob = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    community_id = await _community(feed, alice, bob, owner=owner)
    poll = await _poll(content, identities, community_id, owner)
    assert poll["results_visible"] is True  # the owner is the community's staff
    assert poll["max_choices"] == 1 and not poll["is_closed"]

    r = await content.client.get(f"/polls/{poll['id']}", headers=identities.headers(bob))
    assert r.status_code == 200 and r.json()["results_visible"] is False
    assert all(o["votes"] is None for o in r.json()["options"])  # on_vote: bob has not voted

    r = await _vote(content, identities, poll, alice, 1)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["results_visible"] and got["total_voters"] == 1
    assert [o["votes"] for o in got["options"]] == [0, 1, 0]
    assert got["options"][1]["voters"] == [str(alice)]  # named
    assert got["my_choices"] == [poll["options"][1]["id"]]

    r = await _vote(content, identities, poll, alice, 2)
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
    assert r.json()["type"] == "urn:hearth:problem:already-voted"
    r = await _vote(content, identities, poll, bob, 0, 1)
    assert r.status_code == 422 and r.json()["type"] == "urn:hearth:problem:too-many-choices"
    r = await content.client.put(
        f"/polls/{poll['id']}/vote",
        json={"option_ids": [str(uuid.uuid4())]},
        headers=identities.headers(bob),
    )
    assert r.status_code == 422 and r.json()["type"] == "urn:hearth:problem:unknown-option"

    async def voted() -> list:
        return [
            e
            for e in await stream_events(f"{subject_prefix}.content.poll.voted.v1")
            if e.data["poll_id"] == poll["id"]
        ]

    [event] = await eventually(voted)
    assert event.data["voter_id"] == str(alice) and event.data["community_id"] == community_id
    assert event.data["author_id"] == str(owner) and event.data["changed"] is False
    created = await stream_events(f"{subject_prefix}.content.poll.created.v1")
    assert [e.data["option_count"] for e in created if e.data["poll_id"] == poll["id"]] == [3]


async def test_anonymous_multiple_choice_change_and_close(
    content: RunningService, feed: Any, identities: Identities, stream_events, subject_prefix: str
) -> None:
    owner, alice, bob = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    community_id = await _community(feed, alice, bob, owner=owner)
    poll = await _poll(
        content,
        identities,
        community_id,
        alice,
        multiple=True,
        max_choices=2,
        anonymous=True,
        allow_change=True,
        results="on_close",
    )
    r = await _vote(content, identities, poll, alice, 0, 2)
    assert r.status_code == 200, r.text
    assert r.json()["results_visible"] is False  # on_close: not before it closes
    r = await _vote(content, identities, poll, alice, 1)  # changed her mind
    assert r.status_code == 200 and r.json()["my_choices"] == [poll["options"][1]["id"]]
    assert await _counts(content, poll["id"]) == (1, 1)
    r = await _vote(content, identities, poll, bob, 0, 1, 2)
    assert r.status_code == 422

    r = await content.client.post(f"/polls/{poll['id']}/close", headers=identities.headers(bob))
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    r = await content.client.post(f"/polls/{poll['id']}/close", headers=identities.headers(alice))
    assert r.status_code == 200 and r.json()["is_closed"], r.text
    got = r.json()
    assert got["results_visible"] and [o["votes"] for o in got["options"]] == [0, 1, 0]
    assert all(o["voters"] is None for o in got["options"])  # anonymous: no voters, ever
    r = await _vote(content, identities, poll, bob, 0)
    assert r.status_code == 409 and r.json()["type"] == "urn:hearth:problem:poll-closed"

    async def events(kind: str) -> list:
        return [
            e
            for e in await stream_events(f"{subject_prefix}.content.poll.{kind}.v1")
            if e.data["poll_id"] == poll["id"]
        ]

    votes = await eventually(lambda: _at_least(events("voted"), 2))
    assert all(e.data["voter_id"] is None for e in votes)  # anonymous: the voter never leaves
    assert [e.data["changed"] for e in votes] == [False, True]
    assert votes[0].data["ballot_id"] == votes[1].data["ballot_id"]  # one ballot, changed
    [closed] = await eventually(lambda: events("closed"))
    assert closed.data["voters"] == 1 and closed.data["closed_by"] == str(alice)


async def _at_least(pending: Any, n: int) -> list | None:
    got = await pending
    return got if len(got) >= n else None


async def test_muted_member_vote_is_refused_with_the_mute_end_and_staff_only_results(
    content: RunningService, feed: Any, identities: Identities
) -> None:
    owner, muted, member = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    community_id = await _community(feed, member, owner=owner)
    until = utcnow() + timedelta(hours=2)
    await feed.member(community_id, muted, muted_until=until)
    poll = await _poll(content, identities, community_id, owner, results="staff")
    r = await _vote(content, identities, poll, muted, 0)
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["type"] == "urn:hearth:problem:muted"
    assert abs((_parse(body["muted_until"]) - until).total_seconds()) < 1
    assert await _counts(content, poll["id"]) == (0, 0)
    # A muted member may not open a poll either; a stranger does not see the poll.
    r = await content.client.post(
        f"/communities/{community_id}/polls",
        json={"question": "q", "options": ["a", "b"]},
        headers=identities.headers(muted),
    )
    assert r.status_code == 403 and r.json()["muted_until"]
    r = await content.client.get(f"/polls/{poll['id']}", headers=identities.headers(uuid.uuid4()))
    assert r.status_code == 404

    r = await _vote(content, identities, poll, member, 2)
    assert r.status_code == 200 and r.json()["results_visible"] is False  # staff only
    r = await content.client.get(f"/polls/{poll['id']}", headers=identities.headers(owner))
    assert r.json()["results_visible"] and r.json()["total_voters"] == 1


async def test_a_poll_past_its_close_time_refuses_votes_and_is_announced_closed_once(
    content: RunningService, feed: Any, identities: Identities, stream_events, subject_prefix: str
) -> None:
    owner, member = uuid.uuid4(), uuid.uuid4()
    community_id = await _community(feed, member, owner=owner)
    poll = await _poll(
        content,
        identities,
        community_id,
        owner,
        closes_at=(utcnow() + timedelta(seconds=1)).isoformat(),
    )
    r = await _vote(content, identities, poll, owner, 0)
    assert r.status_code == 200, r.text
    await asyncio.sleep(1.1)
    r = await _vote(content, identities, poll, member, 0)
    assert r.status_code == 409 and r.json()["type"] == "urn:hearth:problem:poll-closed"

    async def closed() -> list:
        return [
            e
            for e in await stream_events(f"{subject_prefix}.content.poll.closed.v1")
            if e.data["poll_id"] == poll["id"]
        ]

    [event] = await eventually(closed)  # the closer (every 0.2 s here) announced it
    assert event.data["closed_by"] is None and event.data["voters"] == 1
    assert await close_due(content.runtime, now=utcnow()) == 0  # and only once


@pytest.mark.parametrize("kind", ["postgres", "sqlite"])
@pytest.mark.parametrize("allow_change", [False, True])
async def test_fifty_concurrent_votes_by_one_member_leave_exactly_one(
    kind: str, allow_change: bool, launch: Any, backends: Any, identities: Identities
) -> None:
    if kind == "postgres" and not backends.postgres_admin_url:
        pytest.skip("PostgreSQL is not available")
    service = await launch(definition, database_url=backends.database_url("content", kind))
    runtime, snaps = service.runtime, Snapshots()
    owner, voter, community = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert await memberships.handle(runtime.db, runtime.tables, snaps.community(community, owner))
    for user, role in ((owner, "owner"), (voter, "member")):
        snapshot = snaps.membership(community, user, role=role)
        assert await memberships.handle(runtime.db, runtime.tables, snapshot)
    community_id = str(community)
    poll = await _poll(
        service, identities, community_id, owner, options=["a", "b"], allow_change=allow_change
    )
    results = await asyncio.gather(
        *(_vote(service, identities, poll, voter, i % 2) for i in range(50))
    )
    statuses = sorted(r.status_code for r in results)
    assert set(statuses) <= {200, 409}, [r.text for r in results if r.status_code >= 500]
    if allow_change:
        assert statuses.count(200) == 50  # every one lands, each replacing the last
    else:
        assert statuses.count(200) == 1 and statuses.count(409) == 49
    assert await _counts(service, poll["id"]) == (1, 1)
    r = await service.client.get(f"/polls/{poll['id']}", headers=identities.headers(owner))
    assert r.json()["total_voters"] == 1
    assert sum(o["votes"] for o in r.json()["options"]) == 1


def _parse(value: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(value)
