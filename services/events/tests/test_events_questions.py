"""Q&A: questions, one upvote per member, anonymity, answered and pinned (real NATS and DB)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from hearth_events.app import definition
from hearth_events.models import CommunityMembership
from servicekit.ids import utcnow
from servicekit.testing.harness import Identities, RunningService, eventually

OPERATOR = uuid.UUID("00000000-0000-7000-8000-000000000001")


async def activity_in(
    events: RunningService, identities: Identities, community_id: uuid.UUID
) -> dict[str, Any]:
    """An activity tomorrow."""
    starts = utcnow() + timedelta(days=1)
    r = await events.client.post(
        "/activities",
        json={
            "community_id": str(community_id),
            "title": "AMA",
            "kind": "lecture",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=1)).isoformat(),
            "capacity": 50,
        },
        headers=identities.headers(OPERATOR, "operator"),
    )
    assert r.status_code == 201, r.text
    return r.json()


async def wait_state(
    events: RunningService, community_id: uuid.UUID, user: uuid.UUID, **want: Any
) -> None:
    """Wait until the read model shows the membership with these values."""

    async def there() -> bool:
        async with events.runtime.db.session() as session:
            row = await session.get(CommunityMembership, (community_id, user))
            return row is not None and all(getattr(row, k) == v for k, v in want.items())

    await eventually(there)


async def test_questions_anonymity_answers_and_pins(
    events: RunningService, identities: Identities, directory, published
) -> None:
    community_id, [asker, other, mod] = await directory.community(events, members=3)
    await directory.membership(community_id, mod, role="moderator")
    await wait_state(events, community_id, mod, role="moderator")
    activity = await activity_in(events, identities, community_id)
    staff = identities.headers(OPERATOR, "operator")
    url = f"/activities/{activity['id']}/questions"

    r = await events.client.post(
        url, json={"text": "  What ships next?  "}, headers=identities.headers(asker)
    )
    assert r.status_code == 201 and r.json()["text"] == "What ships next?", r.text
    plain = r.json()
    r = await events.client.post(
        url, json={"text": "Why?", "anonymous": True}, headers=identities.headers(asker)
    )
    assert r.status_code == 409 and r.json()["type"].endswith(":anonymous-not-allowed")
    r = await events.client.put(
        f"/activities/{activity['id']}/qa-policy",
        json={"anonymous_allowed": True},
        headers=identities.headers(other),
    )
    assert r.status_code == 403
    r = await events.client.put(
        f"/activities/{activity['id']}/qa-policy", json={"anonymous_allowed": True}, headers=staff
    )
    assert r.status_code == 200 and r.json()["anonymous_allowed"] is True
    r = await events.client.post(
        url, json={"text": "Why?", "anonymous": True}, headers=identities.headers(asker)
    )
    assert r.status_code == 201, r.text
    secret = r.json()
    r = await events.client.post(url, json={"text": "   "}, headers=identities.headers(asker))
    assert r.status_code == 422

    # Anonymous to other members; never to its author nor to moderation.
    def author(listing: Any, qid: str) -> Any:
        return next(q for q in listing.json() if q["id"] == qid)["author_id"]

    assert (
        author(await events.client.get(url, headers=identities.headers(other)), secret["id"])
        is None
    )
    assert author(
        await events.client.get(url, headers=identities.headers(other)), plain["id"]
    ) == str(asker)
    assert author(
        await events.client.get(url, headers=identities.headers(asker)), secret["id"]
    ) == str(asker)
    assert author(
        await events.client.get(url, headers=identities.headers(mod)), secret["id"]
    ) == str(asker)
    assert author(await events.client.get(url, headers=staff), secret["id"]) == str(asker)

    # Upvotes order the list; pinned comes first; organisers mark answered.
    r = await events.client.put(
        f"/questions/{secret['id']}/vote", headers=identities.headers(other)
    )
    assert r.status_code == 200 and r.json()["upvotes"] == 1 and r.json()["voted"] is True
    r = await events.client.get(url, headers=identities.headers(other))
    assert [q["id"] for q in r.json()] == [secret["id"], plain["id"]]
    assert [q["voted"] for q in r.json()] == [True, False]
    r = await events.client.patch(
        f"/questions/{plain['id']}", json={"pinned": True}, headers=identities.headers(other)
    )
    assert r.status_code == 403
    r = await events.client.patch(
        f"/questions/{plain['id']}", json={"pinned": True, "answered": True}, headers=staff
    )
    assert r.status_code == 200 and r.json()["pinned"] and r.json()["answered"], r.text
    r = await events.client.get(url, headers=identities.headers(other))
    assert [q["id"] for q in r.json()] == [plain["id"], secret["id"]]
    r = await events.client.delete(
        f"/questions/{secret['id']}/vote", headers=identities.headers(other)
    )
    assert r.status_code == 200 and r.json()["upvotes"] == 0
    r = await events.client.delete(
        f"/questions/{secret['id']}/vote", headers=identities.headers(other)
    )
    assert r.status_code == 200 and r.json()["upvotes"] == 0  # withdrawing twice: no change

    asked = await published("events.question.asked.v1", 2)
    assert {e.data["question_id"] for e in asked} == {plain["id"], secret["id"]}
    for e in asked:  # the fields a moderation screener reads (target_type "question")
        assert {
            "question_id",
            "activity_id",
            "community_id",
            "author_id",
            "text",
            "asked_at",
        } <= set(e.data)
        assert e.data["author_id"] == str(asker) and e.data["community_id"] == str(community_id)
    [answered] = await published("events.question.answered.v1", 1)
    assert answered.data["question_id"] == plain["id"]


async def test_one_upvote_per_member_under_concurrency(
    any_database_url: str, launch, identities: Identities, directory
) -> None:
    events = await launch(definition, database_url=any_database_url)
    community_id, users = await directory.community(events, members=6)
    activity = await activity_in(events, identities, community_id)
    r = await events.client.post(
        f"/activities/{activity['id']}/questions",
        json={"text": "Q"},
        headers=identities.headers(users[0]),
    )
    vote = f"/questions/{r.json()['id']}/vote"
    calls = [events.client.put(vote, headers=identities.headers(u)) for u in users[1:]]
    calls += [events.client.put(vote, headers=identities.headers(users[1])) for _ in range(5)]
    responses = await asyncio.gather(*calls)
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    r = await events.client.get(
        f"/activities/{activity['id']}/questions", headers=identities.headers(users[0])
    )
    assert r.json()[0]["upvotes"] == 5, r.text


async def test_muted_and_removed_members_may_not_ask_vote_or_register(
    events: RunningService, identities: Identities, directory
) -> None:
    community_id, [member, muted, removed] = await directory.community(events, members=3)
    activity = await activity_in(events, identities, community_id)
    r = await events.client.post(
        f"/activities/{activity['id']}/questions",
        json={"text": "Q"},
        headers=identities.headers(member),
    )
    question = r.json()
    until = utcnow() + timedelta(hours=2)
    await directory.membership(community_id, muted, muted_until=until)
    await directory.membership(community_id, removed, status="removed")
    await wait_state(events, community_id, removed, status="removed")
    await wait_state(events, community_id, muted, muted_until=until)
    for who, kind in ((muted, ":muted"), (removed, ":forbidden")):
        headers = identities.headers(who)
        for method, path, body in (
            ("POST", f"/activities/{activity['id']}/questions", {"text": "Q"}),
            ("PUT", f"/questions/{question['id']}/vote", None),
            ("POST", f"/activities/{activity['id']}/registrations", None),
        ):
            r = await events.client.request(method, path, json=body, headers=headers)
            assert r.status_code == 403, (who, method, path, r.text)
            assert r.json()["type"].endswith(kind), r.text
            if kind == ":muted":
                assert r.json()["muted_until"], r.text
    # The mute ends: the member takes part again.
    await directory.membership(community_id, muted, muted_until=None)
    await wait_state(events, community_id, muted, muted_until=None)
    r = await events.client.put(
        f"/questions/{question['id']}/vote", headers=identities.headers(muted)
    )
    assert r.status_code == 200 and r.json()["upvotes"] == 1
