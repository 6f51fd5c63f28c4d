"""Members' exits and role changes reach events' membership read model and close registration."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from hearth_events.models import CommunityMembership
from hearth_members.app import definition as members_definition
from servicekit.ids import utcnow
from servicekit.testing.harness import Broker, Identities, RunningService, eventually
from servicekit.testing.membership import redelivered

OPERATOR = uuid.UUID("00000000-0000-7000-8000-000000000001")


def _activity_body(community_id: uuid.UUID) -> dict[str, Any]:
    starts = utcnow() + timedelta(days=1)
    return {
        "community_id": str(community_id),
        "title": "Town hall",
        "kind": "online_lecture",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=1)).isoformat(),
        "capacity": 10,
    }


async def _row(
    events: RunningService, community_id: uuid.UUID, user: uuid.UUID
) -> CommunityMembership | None:
    async with events.runtime.db.session() as session:
        return await session.get(CommunityMembership, (community_id, user))


async def _until(
    events: RunningService, community_id: uuid.UUID, user: uuid.UUID, check: Any
) -> None:
    async def ok() -> bool:
        row = await _row(events, community_id, user)
        return row is not None and check(row)

    await eventually(ok)


async def test_removed_and_departed_members_cannot_register(
    launch, identities: Identities, events: RunningService
) -> None:
    members = await launch(members_definition)
    staff = identities.headers(OPERATOR, "operator")
    r = await members.client.post(
        "/communities", json={"name": "Makers", "kind": "customer"}, headers=staff
    )
    assert r.status_code == 201, r.text
    community_id = uuid.UUID(r.json()["id"])
    base = f"/communities/{community_id}"
    stays, removed, leaver, banned, promoted = (uuid.uuid4() for _ in range(5))
    for who in (stays, removed, leaver, banned, promoted):
        r = await members.client.post(base + "/members", headers=identities.headers(who))
        assert r.status_code == 201, r.text
        await _until(events, community_id, who, lambda m: m.status == "active")

    r = await events.client.post("/activities", json=_activity_body(community_id), headers=staff)
    assert r.status_code == 201, r.text
    register = f"/activities/{r.json()['id']}/registrations"
    r = await events.client.post(register, headers=identities.headers(removed))
    assert r.status_code == 201, r.text  # registered while still a member

    r = await members.client.post(
        f"{base}/members/{removed}/removal", json={"reason": "spam"}, headers=staff
    )
    assert r.status_code == 200, r.text
    r = await members.client.delete(base + "/members/me", headers=identities.headers(leaver))
    assert r.status_code == 204, r.text
    r = await members.client.post(
        f"{base}/members/{banned}/ban", json={"reason": "abuse"}, headers=staff
    )
    assert r.status_code == 200, r.text
    r = await members.client.put(
        f"{base}/members/{promoted}/role", json={"role": "moderator"}, headers=staff
    )
    assert r.status_code == 200, r.text

    await _until(events, community_id, removed, lambda m: m.status == "removed")
    await _until(events, community_id, leaver, lambda m: m.status == "left")
    await _until(events, community_id, banned, lambda m: m.status == "banned")
    await _until(events, community_id, promoted, lambda m: m.role == "moderator")
    for who in (removed, leaver, banned):
        r = await events.client.post(register, headers=identities.headers(who))
        assert r.status_code == 403, (who, r.text)
    for who in (stays, promoted):
        r = await events.client.post(register, headers=identities.headers(who))
        assert r.status_code == 201, r.text

    # A lifted ban leaves the person outside until they join again.
    r = await members.client.post(f"{base}/members/{banned}/restore", headers=staff)
    assert r.status_code == 200, r.text
    await _until(events, community_id, banned, lambda m: m.status == "left")
    r = await events.client.post(register, headers=identities.headers(banned))
    assert r.status_code == 403
    r = await members.client.post(base + "/members", headers=identities.headers(banned))
    assert r.status_code == 201, r.text
    await _until(events, community_id, banned, lambda m: m.status == "active")
    r = await events.client.post(register, headers=identities.headers(banned))
    assert r.status_code == 201, r.text


async def test_an_older_snapshot_never_resurrects_a_removed_member(
    events: RunningService, identities: Identities, directory: Any, broker: Broker
) -> None:
    community_id, [member] = await directory.community(events, members=1)
    r = await events.client.post(
        "/activities",
        json=_activity_body(community_id),
        headers=identities.headers(OPERATOR, "operator"),
    )
    assert r.status_code == 201, r.text
    register = f"/activities/{r.json()['id']}/registrations"

    snaps = directory.snapshots
    user = uuid.uuid4()
    joined = snaps.membership(community_id, user)
    removed = snaps.membership(community_id, user, status="removed")
    # The newer state first, then the older join (a redelivery, or a slow replica).
    await broker.publish(removed)
    await broker.publish(joined)
    # Role changes out of order: the newer role stays; the older one is ignored.
    promoted = snaps.membership(community_id, member, role="admin")
    demoted = snaps.membership(community_id, member, role="moderator")
    await broker.publish(demoted)
    await broker.publish(redelivered(promoted))
    marker = uuid.uuid4()  # a later message on the same stream: once it is in, all were handled
    await directory.membership(community_id, marker, status="left")
    await _until(events, community_id, marker, lambda m: m.status == "left")

    row = await _row(events, community_id, user)
    assert row is not None and row.status == "removed" and row.version == 2
    r = await events.client.post(register, headers=identities.headers(user))
    assert r.status_code == 403
    row = await _row(events, community_id, member)
    assert row is not None and row.role == "moderator" and row.status == "active"
    r = await events.client.post(register, headers=identities.headers(member))
    assert r.status_code == 201, r.text
