"""Read models from members' snapshots, the metrics policy, who reads it, the privacy floor."""

from __future__ import annotations

import uuid
from datetime import date

from hearth_metrics.communities.consumers import memberships
from hearth_metrics.communities.models import Community, Membership
from hearth_metrics.communities.service import Policy
from hearth_metrics.privacy import Floor, aligned, guard, guard_parts, guard_share
from servicekit.identity import Principal
from servicekit.testing.harness import Identities, RunningService
from servicekit.testing.membership import Snapshots, redelivered

PROBLEM = "application/problem+json"


def service_key(identities: Identities, *scopes: str) -> dict[str, str]:
    """Headers of a business system's API key with these scopes."""
    principal = Principal(
        subject=uuid.uuid4(), kind="service", roles=frozenset({"service"}), scopes=frozenset(scopes)
    )
    return {"x-hearth-identity": identities.signer.sign(principal)}


async def test_snapshots_build_the_read_models_newest_version_wins(
    metrics: RunningService,
) -> None:
    rt = metrics.runtime
    snaps = Snapshots()
    community, owner, user = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert await memberships.handle(rt.db, rt.tables, snaps.community(community, owner))
    first = snaps.membership(community, user, role="member")
    second = snaps.membership(community, user, role="admin", tier="core")
    assert await memberships.handle(rt.db, rt.tables, second)
    # The older snapshot arriving late (and a redelivery of it) changes nothing.
    assert await memberships.handle(rt.db, rt.tables, first)
    assert await memberships.handle(rt.db, rt.tables, redelivered(first))
    async with rt.db.session() as session:
        row = await session.get(Membership, (community, user))
        assert row is not None and (row.role, row.tier, row.version) == ("admin", "core", 2)
        known = await session.get(Community, community)
        assert known is not None and known.kind == "internal" and known.owner_id == owner


async def test_policy_defaults_changes_and_who_may_read_it(
    metrics: RunningService, identities: Identities
) -> None:
    rt = metrics.runtime
    snaps = Snapshots()
    community, owner, admin, member, stranger = (uuid.uuid4() for _ in range(5))
    await memberships.handle(rt.db, rt.tables, snaps.community(community, owner, kind="customer"))
    for user, role in ((owner, "owner"), (admin, "admin"), (member, "member")):
        await memberships.handle(rt.db, rt.tables, snaps.membership(community, user, role=role))
    url = f"/communities/{community}/policy"

    r = await metrics.client.get(url, headers=identities.headers(owner))
    assert r.status_code == 200, r.text
    assert r.json() | {"updated_at": None} == {
        "community_id": str(community),
        "kind": "customer",
        "internal": False,
        "time_zone": "UTC",
        "inactive_days": 30,
        "k_floor": 5,
        "rankings_enabled": False,
        "published": [],
        "updated_at": None,
    }
    change = {"time_zone": "Asia/Shanghai", "inactive_days": 14, "published": ["leaderboard"]}
    r = await metrics.client.patch(url, json=change, headers=identities.headers(admin))
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["time_zone"], got["inactive_days"], got["published"]) == (
        "Asia/Shanghai",
        14,
        ["leaderboard"],
    )
    assert got["updated_at"]
    # Refusals: a member may not change it, nor read it (not published); a stranger gets 404.
    r = await metrics.client.patch(url, json={"k_floor": 2}, headers=identities.headers(member))
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    r = await metrics.client.get(url, headers=identities.headers(member))
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    r = await metrics.client.get(url, headers=identities.headers(stranger))
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    r = await metrics.client.patch(url, json={}, headers=identities.headers(stranger))
    assert r.status_code == 404
    # API keys read by scope only.
    r = await metrics.client.get(url, headers=service_key(identities))
    assert r.status_code == 403 and r.json()["required_scope"] == "metrics:read"
    r = await metrics.client.get(url, headers=service_key(identities, "metrics:read"))
    assert r.status_code == 200
    # Staff read and change every community.
    r = await metrics.client.patch(
        url, json={"time_zone": None}, headers=identities.headers(None, "operator")
    )
    assert r.status_code == 200 and r.json()["time_zone"] == "UTC"
    # Bad input is a 422 problem.
    for bad in ({"time_zone": "Mars/Olympus"}, {"published": ["salaries"]}, {"k_floor": 1}):
        r = await metrics.client.patch(url, json=bad, headers=identities.headers(owner))
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, (bad, r.text)


def _floor(kind: str, k: int = 5) -> Floor:
    return Floor.of(
        Policy(
            community_id=uuid.uuid4(),
            kind=kind,
            time_zone="UTC",
            inactive_days=30,
            k_floor=k,
            rankings_enabled=False,
            published=frozenset(),
        )
    )


def test_the_floor_suppresses_small_groups_only_in_internal_communities() -> None:
    internal, customer = _floor("internal"), _floor("customer")
    assert guard(3, people=3, floor=internal).model_dump() == {
        "value": None,
        "suppressed": "fewer than 5 people",
    }
    assert guard(0, people=0, floor=internal).value is None
    assert guard(7, people=5, floor=internal).value == 7
    assert guard(3, people=3, floor=customer).value == 3
    # A share reveals both sides: 9 of 10 retained means 1 was not.
    assert guard_share(0.9, part=9, whole=10, floor=internal).value is None
    assert guard_share(0.5, part=5, whole=10, floor=internal).value == 0.5
    # One small part of a published whole drags the smallest other part with it.
    parts = guard_parts({"invite": (2, 2), "link": (6, 6), "search": (9, 9)}, floor=internal)
    assert [parts[c].value for c in ("invite", "link", "search")] == [None, None, 9]
    assert aligned(date(2026, 12, 2), date(2026, 12, 9), grain="week") == (
        date(2026, 11, 30),
        date(2026, 12, 13),
    )
    assert aligned(date(2026, 2, 10), date(2026, 2, 11), grain="month") == (
        date(2026, 2, 1),
        date(2026, 2, 28),
    )
