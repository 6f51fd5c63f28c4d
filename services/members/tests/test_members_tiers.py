"""Earned tiers: recomputed from points and metrics' activity facts, changes published with
their privileges (content keeps a read model of `skip_first_review`)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from members_testkit import (
    PROBLEM,
    adjust,
    join,
    make_community,
    publish,
    published,
    staff,
)
from servicekit.ids import utcnow
from servicekit.testing.harness import (
    Identities,
    RunningService,
    eventually,
)


async def tier(members: RunningService, identities: Identities, cid: str, user: uuid.UUID) -> dict:
    """The member's tier as they see it themselves."""
    r = await members.client.get(
        f"/communities/{cid}/members/{user}/tier", headers=identities.headers(user)
    )
    assert r.status_code == 200, r.text
    return r.json()


def tier_is(members: RunningService, identities: Identities, cid: str, user: uuid.UUID, want: str):
    """An `eventually` check on a member's tier."""

    async def check() -> bool:
        got = (await tier(members, identities, cid, user))["tier"]
        assert got == want, got
        return True

    return check


async def test_points_and_activity_move_tiers_and_changes_are_events(
    members: RunningService, identities: Identities, nats_client: Any, subject_prefix: str
) -> None:
    cid = await make_community(members, identities)
    user, idle = uuid.uuid4(), uuid.uuid4()
    await join(members, identities, cid, user)
    await join(members, identities, cid, idle)
    assert (await tier(members, identities, cid, user)) | {"changed_at": None} == {
        "community_id": cid,
        "user_id": str(user),
        "tier": "regular",
        "privileges": [],
        "changed_at": None,
    }
    await adjust(members, identities, cid, user, 25)  # ≥ 20: active
    assert (await tier(members, identities, cid, user))["tier"] == "active"
    await adjust(members, identities, cid, user, 200)  # ≥ 200 earned: core
    got = await tier(members, identities, cid, user)
    assert got["tier"] == "core" and got["privileges"] == ["skip_first_review"]

    # Metrics says the member went quiet: back to regular; active again: core again.
    await publish(
        nats_client,
        subject_prefix,
        "hearth.metrics.member.inactive.v1",
        {
            "community_id": cid,
            "user_id": str(user),
            "kind": "quiet_top_contributor",
            "last_active_at": (utcnow() - timedelta(days=40)).isoformat(),
            "inactive_days": 40,
            "detected_at": utcnow().isoformat(),
        },
    )
    await eventually(tier_is(members, identities, cid, user, "regular"))
    await publish(
        nats_client,
        subject_prefix,
        "hearth.metrics.member.active.v1",
        {"community_id": cid, "user_id": str(user), "active_at": utcnow().isoformat()},
    )
    await eventually(tier_is(members, identities, cid, user, "core"))
    # Recent activity alone makes a member with no points active.
    await publish(
        nats_client,
        subject_prefix,
        "hearth.metrics.member.active.v1",
        {"community_id": cid, "user_id": str(idle), "active_at": utcnow().isoformat()},
    )
    await eventually(tier_is(members, identities, cid, idle, "active"))

    async def changes() -> list[tuple[str, str, str, list[str]]]:
        found = await published(nats_client, subject_prefix, "hearth.members.tier.changed.v1")
        mine = [
            (e.data["user_id"], e.data["from_tier"], e.data["to_tier"], e.data["privileges"])
            for e in found
        ]
        assert len(mine) == 5, mine
        return mine

    assert await eventually(changes) == [
        (str(user), "regular", "active", []),
        (str(user), "active", "core", ["skip_first_review"]),
        (str(user), "core", "regular", []),
        (str(user), "regular", "core", ["skip_first_review"]),
        (str(idle), "regular", "active", []),
    ]


async def test_tier_rules_and_privileges_per_community(
    members: RunningService, identities: Identities, nats_client: Any, subject_prefix: str
) -> None:
    cid = await make_community(members, identities)
    user, other = uuid.uuid4(), uuid.uuid4()
    await join(members, identities, cid, user)
    await join(members, identities, cid, other)
    await adjust(members, identities, cid, user, 250)
    assert (await tier(members, identities, cid, user))["tier"] == "core"
    r = await members.client.get(f"/communities/{cid}/tier-rules", headers=staff(identities))
    assert r.status_code == 200 and r.json()["core_min_points"] == 200
    # Raising the bar and granting active members priority registration recomputes at once.
    rules = {
        "core_min_points": 1000,
        "active_min_points": 100,
        "active_within_days": 14,
        "privileges": {"core": ["skip_first_review"], "active": ["priority_registration"]},
    }
    r = await members.client.put(
        f"/communities/{cid}/tier-rules", json=rules, headers=staff(identities)
    )
    assert r.status_code == 200, r.text
    got = await tier(members, identities, cid, user)
    assert got["tier"] == "active" and got["privileges"] == ["priority_registration"]
    r = await members.client.post(f"/communities/{cid}/tiers/recompute", headers=staff(identities))
    assert r.status_code == 200 and r.json()["changed"] == 0 and r.json()["members"] >= 1

    async def demoted() -> bool:
        found = await published(nats_client, subject_prefix, "hearth.members.tier.changed.v1")
        assert [(e.data["to_tier"], e.data["privileges"]) for e in found][-1] == (
            "active",
            ["priority_registration"],
        )
        return True

    await eventually(demoted)
    # A core member keeps the tier when core stops skipping first review: the tier is
    # re-announced with its new privileges (from == to) so content's read model follows.
    await adjust(members, identities, cid, other, 1500)
    assert (await tier(members, identities, cid, other))["tier"] == "core"
    r = await members.client.put(
        f"/communities/{cid}/tier-rules",
        json={**rules, "privileges": {"core": [], "active": ["priority_registration"]}},
        headers=staff(identities),
    )
    assert r.status_code == 200, r.text
    assert (await tier(members, identities, cid, other))["privileges"] == []

    async def regranted() -> bool:
        found = await published(nats_client, subject_prefix, "hearth.members.tier.changed.v1")
        last = found[-1].data
        assert (last["user_id"], last["from_tier"], last["to_tier"], last["privileges"]) == (
            str(other),
            "core",
            "core",
            [],
        )
        return True

    await eventually(regranted)

    # Refusals: members may not read or change rules, recompute, or read another's tier.
    uh = identities.headers(user)
    for method, path, body in (
        ("GET", "/tier-rules", None),
        ("PUT", "/tier-rules", rules),
        ("POST", "/tiers/recompute", None),
        ("GET", f"/members/{other}/tier", None),
    ):
        r = await members.client.request(method, f"/communities/{cid}{path}", json=body, headers=uh)
        assert r.status_code == 403 and r.headers["content-type"] == PROBLEM, path
    r = await members.client.get(
        f"/communities/{cid}/members/{user}/tier", headers=identities.headers(uuid.uuid4())
    )
    assert r.status_code == 403
    # Bad input.
    for bad in (
        {**rules, "privileges": {"core": ["fly"]}},
        {**rules, "privileges": {"legend": []}},
        {**rules, "core_min_points": 10},  # below active_min_points
        {**rules, "active_within_days": 0},
    ):
        r = await members.client.put(
            f"/communities/{cid}/tier-rules", json=bad, headers=staff(identities)
        )
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, bad
    r = await members.client.get(
        f"/communities/{uuid.uuid4()}/tier-rules", headers=staff(identities)
    )
    assert r.status_code == 404
