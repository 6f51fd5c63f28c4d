"""Per-community counters fed by members, content and events facts over real NATS."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from hearth_events.app import definition as events_definition
from hearth_members.app import definition as members_definition
from hearth_metrics.app import definition as metrics_definition
from hearth_metrics.counters.consumers import community_counts
from servicekit.ids import utcnow
from servicekit.testing.harness import Identities, RunningService, eventually

PROBLEM = "application/problem+json"
OPERATOR = uuid.UUID("00000000-0000-7000-8000-000000000001")


def staff(identities: Identities) -> dict[str, str]:
    """Headers of the dev operator."""
    return identities.headers(OPERATOR, "operator")


async def counts(metrics: RunningService, identities: Identities, community_id: Any) -> dict:
    """GET the counters as an operator."""
    r = await metrics.client.get(f"/communities/{community_id}/counts", headers=staff(identities))
    assert r.status_code == 200, r.text
    return r.json()


def counted(metrics: RunningService, identities: Identities, community_id: Any, **want: int) -> Any:
    """An `eventually` check that the community's counters equal `want`."""

    async def check() -> bool:
        got = await counts(metrics, identities, community_id)
        assert {k: got[k] for k in want} == want
        return True

    return check


async def test_counts_follow_real_members_and_events_services(
    launch, metrics: RunningService, broker, identities: Identities
) -> None:
    members = await launch(members_definition)
    events = await launch(events_definition)
    r = await members.client.post(
        "/communities", json={"name": "Makers", "kind": "customer"}, headers=staff(identities)
    )
    assert r.status_code == 201, r.text
    community_id = r.json()["id"]
    users = [uuid.uuid4(), uuid.uuid4()]
    for user in users:  # the owner joined on creation: 3 joins in all
        r = await members.client.post(
            f"/communities/{community_id}/members", headers=identities.headers(user)
        )
        assert r.status_code == 201

    # Events learns the memberships from the same member.joined facts.
    starts = utcnow() + timedelta(days=2)
    body = {
        "community_id": community_id,
        "title": "Meetup",
        "kind": "meetup",
        "capacity": 5,
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=2)).isoformat(),
    }

    async def activity_published() -> Any:
        r = await events.client.post("/activities", json=body, headers=staff(identities))
        return r.json() if r.status_code == 201 else None

    activity = await eventually(activity_published)
    for user in users:

        async def registered(user: uuid.UUID = user) -> bool:
            r = await events.client.post(
                f"/activities/{activity['id']}/registrations", headers=identities.headers(user)
            )
            return r.status_code == 201

        await eventually(registered)

    # Content is built elsewhere: publish its facts as its relay would.
    cid = uuid.UUID(community_id)
    for env in (
        broker.post_submitted(cid),
        broker.post_submitted(cid),
        broker.post_published(cid),
    ):
        await broker.publish(env)

    await eventually(
        counted(
            metrics,
            identities,
            community_id,
            joins=3,
            posts_submitted=2,
            posts_published=1,
            registrations=2,
        )
    )
    got = await counts(metrics, identities, community_id)
    assert got["community_id"] == community_id
    assert got["updated_at"].endswith(("Z", "+00:00"))


async def test_the_same_event_delivered_twice_counts_once(
    metrics: RunningService, broker, identities: Identities
) -> None:
    community_id = uuid.uuid4()
    env = broker.post_submitted(community_id)
    await broker.publish(env)
    # Past JetStream's duplicate window (a relay re-publishing after a crash, a replayed stream):
    # a second copy of the same event id is stored and delivered; the inbox must drop it.
    await broker.publish(env, msg_id=f"{env.id}-again")
    stats = metrics.runtime.consumers[0].stats

    async def both_seen() -> bool:
        return stats["handled"] + stats["duplicates"] >= 2

    await eventually(both_seen)
    assert stats["duplicates"] >= 1
    got = await counts(metrics, identities, community_id)
    assert (got["posts_submitted"], got["joins"], got["registrations"]) == (1, 0, 0)


async def test_concurrent_counting_loses_nothing_on_each_backend(
    any_database_url: str, launch, broker, identities: Identities
) -> None:
    community_id = uuid.uuid4()
    types = {
        "joins": "hearth.members.member.joined.v1",
        "posts_submitted": "hearth.content.post.submitted.v1",
        "posts_published": "hearth.content.post.published.v1",
        "registrations": "hearth.events.registration.confirmed.v1",
    }
    metrics = await launch(metrics_definition, database_url=any_database_url)
    # Handlers racing each other directly, including over the very first row of a community.
    rt = metrics.runtime
    envelopes = [broker.envelope(t, community_id) for t in types.values() for _ in range(6)]
    results = await asyncio.gather(
        *(community_counts.handle(rt.db, rt.tables, e) for e in envelopes)
    )
    assert all(results)
    # The same events again at once: the inbox refuses every one of them.
    again = await asyncio.gather(*(community_counts.handle(rt.db, rt.tables, e) for e in envelopes))
    assert not any(again)
    got = await counts(metrics, identities, community_id)
    assert {k: got[k] for k in types} == dict.fromkeys(types, 6)

    # And through the broker, where one pull loop per producing stream runs concurrently.
    for _ in range(10):
        for ce_type in types.values():
            await broker.publish(broker.envelope(ce_type, community_id))
    await eventually(counted(metrics, identities, community_id, **dict.fromkeys(types, 16)))


async def test_counts_access_and_unknown_communities(
    metrics: RunningService, identities: Identities
) -> None:
    unknown = uuid.uuid4()
    url = f"/communities/{unknown}/counts"
    r = await metrics.client.get(url)
    assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
    r = await metrics.client.get(url, headers={"x-hearth-identity": "forged"})
    assert r.status_code == 401
    r = await metrics.client.get(url, headers=identities.headers(uuid.uuid4()))
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    r = await metrics.client.get(url, headers=identities.headers(uuid.uuid4(), "admin"))
    assert r.status_code == 200
    # Nothing counted yet: zeros, not 404 (metrics cannot tell "unknown" from "quiet").
    assert r.json() == {
        "community_id": str(unknown),
        "joins": 0,
        "posts_submitted": 0,
        "posts_published": 0,
        "registrations": 0,
        "updated_at": None,
    }
    r = await metrics.client.get("/communities/not-a-uuid/counts", headers=staff(identities))
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
