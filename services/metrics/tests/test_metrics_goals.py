"""Goals: members' goal facts (checked by members' own models) and their progress per community."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from metrics_testkit import PROBLEM, community, joined

from hearth_metrics.counters.consumers import community_counts
from hearth_metrics.goals.consumers import goals
from servicekit.events import Envelope
from servicekit.testing.contracts import producer_envelope
from servicekit.testing.harness import Identities, RunningService

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)


def goal_set(cid: uuid.UUID, metric: str, target: float, **over: Any) -> Envelope:
    """members' goal.set.v1, validated by members' GoalSet."""
    data = {
        "goal_id": str(uuid.uuid4()),
        "community_id": str(cid),
        "metric": metric,
        "target": target,
        "deadline": "2030-06-30",
        "owner_id": str(uuid.uuid4()),
        "set_at": T0.isoformat(),
    } | over
    return producer_envelope("hearth.members.goal.set.v1", data, subject=str(cid))


def goal_removed(cid: uuid.UUID, goal_id: str) -> Envelope:
    """members' goal.removed.v1, validated by members' GoalRemoved."""
    data = {"goal_id": goal_id, "community_id": str(cid), "removed_at": T0.isoformat()}
    return producer_envelope("hearth.members.goal.removed.v1", data, subject=str(cid))


async def test_goal_progress_from_members_goals_and_the_counters(
    metrics: RunningService, identities: Identities
) -> None:
    rt = metrics.runtime
    cid, owner, people = await community(metrics, kind="customer", members=6)
    for i, user in enumerate(people):
        await community_counts.handle(rt.db, rt.tables, joined(cid, user, T0 + i * timedelta(1)))
    joins = goal_set(cid, "joins", 4)
    posts = goal_set(cid, "posts_published", 10)
    gone = goal_set(cid, "registrations", 3)
    # The removal may arrive before the setting: the goal stays removed.
    assert await goals.handle(rt.db, rt.tables, goal_removed(cid, gone.data["goal_id"]))
    for e in (joins, posts, gone):
        assert await goals.handle(rt.db, rt.tables, e)
    # A redelivery changes nothing; another community's goal never shows here.
    assert not await goals.handle(rt.db, rt.tables, joins)
    await goals.handle(rt.db, rt.tables, goal_set(uuid.uuid4(), "joins", 1))
    url = f"/communities/{cid}/goals/progress"
    r = await metrics.client.get(url, headers=identities.headers(owner))
    assert r.status_code == 200, r.text
    got = {g["metric"]: g for g in r.json()["goals"]}
    assert set(got) == {"joins", "posts_published"}
    assert (got["joins"]["target"], got["joins"]["current"], got["joins"]["share"]) == (4, 6, 1.5)
    assert got["joins"]["achieved"] is True and got["joins"]["suppressed"] is None
    assert (got["posts_published"]["current"], got["posts_published"]["share"]) == (0, 0)
    assert got["posts_published"]["achieved"] is False
    # A plain member may not read it (not published), a stranger is not told it exists.
    r = await metrics.client.get(url, headers=identities.headers(people[0]))
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    r = await metrics.client.get(url, headers=identities.headers(uuid.uuid4()))
    assert r.status_code in (403, 404) and r.headers["content-type"] == PROBLEM


async def test_goal_progress_of_an_internal_community_respects_the_floor(
    metrics: RunningService, identities: Identities
) -> None:
    rt = metrics.runtime
    cid, owner, people = await community(metrics, kind="internal", members=3)
    for user in people:
        await community_counts.handle(rt.db, rt.tables, joined(cid, user, T0))
    await goals.handle(rt.db, rt.tables, goal_set(cid, "joins", 10))
    await goals.handle(rt.db, rt.tables, goal_set(cid, "posts_published", 10))
    r = await metrics.client.get(
        f"/communities/{cid}/goals/progress", headers=identities.headers(owner)
    )
    assert r.status_code == 200, r.text
    got = {g["metric"]: g for g in r.json()["goals"]}
    # 3 people joined, k = 5: null with a reason, never the small count or its share.
    assert got["joins"]["current"] is None and got["joins"]["share"] is None
    assert got["joins"]["achieved"] is None and got["joins"]["suppressed"]
    # Posts are not people: shown.
    assert got["posts_published"]["current"] == 0 and got["posts_published"]["suppressed"] is None
