"""Members' lifecycle events (mute, exits, roles, archive) reach content's read models and gates.

The first tests drive the real members service over its HTTP API and let its snapshots reach
content through real NATS; the last ones hand content members' snapshots out of order.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from hearth_content.consumers import memberships
from hearth_content.models import Community, Membership
from servicekit.ids import utcnow
from servicekit.testing.harness import Identities, RunningService, eventually
from servicekit.testing.membership import redelivered

POST = {"title": "Weekly digest", "body": "What happened this week.", "format": "text"}


async def _community(members: RunningService, identities: Identities, operator: uuid.UUID) -> str:
    """A community created through members by an operator (who becomes its owner)."""
    r = await members.client.post(
        "/communities",
        json={"name": "Customers", "kind": "customer"},
        headers=identities.headers(operator, "operator"),
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def _membership(content: RunningService, community_id: str, user: uuid.UUID) -> Membership:
    async with content.runtime.db.session() as session:
        row = await session.get(Membership, (uuid.UUID(community_id), user))
    assert row is not None
    return row


async def _until(content: RunningService, community_id: str, user: uuid.UUID, check: Any) -> None:
    """Wait until content's membership row satisfies `check`."""

    async def ok() -> bool:
        async with content.runtime.db.session() as session:
            row = await session.get(Membership, (uuid.UUID(community_id), user))
        return row is not None and check(row)

    await eventually(ok)


async def test_mute_exits_and_roles_from_members_gate_posting(
    members: RunningService, content: RunningService, identities: Identities
) -> None:
    operator = uuid.uuid4()
    staff = identities.headers(operator, "operator")
    community_id = await _community(members, identities, operator)
    base = f"/communities/{community_id}"
    muted, leaver, removed, banned, promoted = (uuid.uuid4() for _ in range(5))
    for who in (muted, leaver, removed, banned, promoted):
        r = await members.client.post(base + "/members", headers=identities.headers(who))
        assert r.status_code == 201, r.text
    for who in (muted, leaver, removed, banned, promoted):
        await _until(content, community_id, who, lambda m: m.status == "active")

    until = utcnow() + timedelta(hours=1)
    r = await members.client.post(
        f"{base}/members/{muted}/mute",
        json={"muted_until": until.isoformat(), "reason": "cool down"},
        headers=staff,
    )
    assert r.status_code == 200, r.text
    r = await members.client.delete(base + "/members/me", headers=identities.headers(leaver))
    assert r.status_code == 204, r.text
    r = await members.client.post(
        f"{base}/members/{removed}/removal", json={"reason": "spam"}, headers=staff
    )
    assert r.status_code == 200, r.text
    r = await members.client.post(
        f"{base}/members/{banned}/ban", json={"reason": "abuse"}, headers=staff
    )
    assert r.status_code == 200, r.text
    r = await members.client.put(
        f"{base}/members/{promoted}/role", json={"role": "moderator"}, headers=staff
    )
    assert r.status_code == 200, r.text

    await _until(content, community_id, muted, lambda m: m.muted_until is not None)
    await _until(content, community_id, leaver, lambda m: m.status == "left")
    await _until(content, community_id, removed, lambda m: m.status == "removed")
    await _until(content, community_id, banned, lambda m: m.status == "banned")
    await _until(content, community_id, promoted, lambda m: m.role == "moderator")

    url = base + "/posts"
    r = await content.client.post(url, json=POST, headers=identities.headers(muted))
    assert r.status_code == 403 and r.json()["type"] == "urn:hearth:problem:muted"
    # The write gate (hearth_content.guards) says why: left, removed or banned.
    for who, why in ((leaver, "not-a-member"), (removed, "removed"), (banned, "banned")):
        r = await content.client.post(url, json=POST, headers=identities.headers(who))
        assert r.status_code == 403 and r.json()["type"] == f"urn:hearth:problem:{why}"
    r = await content.client.post(url, json=POST, headers=identities.headers(promoted))
    assert r.status_code == 201, r.text

    # Lifting the mute (members sends muted_until = now) lets the member post again.
    r = await members.client.post(
        f"{base}/members/{muted}/mute",
        json={"muted_until": None, "reason": "served"},
        headers=staff,
    )
    assert r.status_code == 200, r.text

    async def may_post() -> bool:
        r = await content.client.post(url, json=POST, headers=identities.headers(muted))
        return r.status_code == 201

    await eventually(may_post)

    # A lifted ban leaves the person outside until they join again.
    r = await members.client.post(f"{base}/members/{banned}/restore", headers=staff)
    assert r.status_code == 200, r.text
    await _until(content, community_id, banned, lambda m: m.status == "left")
    r = await content.client.post(url, json=POST, headers=identities.headers(banned))
    assert r.status_code == 403
    r = await members.client.post(base + "/members", headers=identities.headers(banned))
    assert r.status_code == 201, r.text
    await _until(content, community_id, banned, lambda m: m.status == "active")
    r = await content.client.post(url, json=POST, headers=identities.headers(banned))
    assert r.status_code == 201, r.text


async def test_archived_community_refuses_posts_until_restored(
    members: RunningService, content: RunningService, identities: Identities
) -> None:
    operator, user = uuid.uuid4(), uuid.uuid4()
    staff = identities.headers(operator, "operator")
    community_id = await _community(members, identities, operator)
    base = f"/communities/{community_id}"
    r = await members.client.post(base + "/members", headers=identities.headers(user))
    assert r.status_code == 201, r.text
    await _until(content, community_id, user, lambda m: m.status == "active")

    r = await members.client.patch(
        base, json={"name": "Clients", "visibility": "private"}, headers=staff
    )
    assert r.status_code == 200, r.text

    async def community(check: Any) -> None:
        async def ok() -> bool:
            async with content.runtime.db.session() as session:
                row = await session.get(Community, uuid.UUID(community_id))
            return row is not None and check(row)

        await eventually(ok)

    await community(lambda c: c.name == "Clients" and c.visibility == "private")

    r = await members.client.post(base + "/archive", headers=staff)
    assert r.status_code == 200, r.text
    await community(lambda c: c.archived)
    url = base + "/posts"
    r = await content.client.post(url, json=POST, headers=identities.headers(user))
    assert r.status_code == 409 and r.json()["type"] == "urn:hearth:problem:community-archived"
    r = await content.client.post(url, json=POST, headers=identities.headers(uuid.uuid4()))
    assert r.status_code == 404  # private: outsiders still learn nothing
    r = await content.client.get(url, headers=identities.headers(user))
    assert r.status_code == 200  # archived is read-only, not hidden

    r = await members.client.post(base + "/restore", headers=staff)
    assert r.status_code == 200, r.text
    await community(lambda c: not c.archived)
    r = await content.client.post(url, json=POST, headers=identities.headers(user))
    assert r.status_code == 201, r.text


# --- Out of order: members' snapshots delivered in any order ---------------------------------


async def test_a_redelivered_older_snapshot_never_undoes_a_newer_one(
    content: RunningService, feed: Any, identities: Identities
) -> None:
    """The lost-update case: role at t2 fails and is redelivered after the mute at t3 applied."""
    community_id = await feed.community()
    cid, user = uuid.UUID(community_id), uuid.uuid4()
    snaps = feed.snapshots
    until = utcnow() + timedelta(hours=1)
    joined = snaps.membership(cid, user)  # t1, version 1
    promoted = snaps.membership(cid, user, role="moderator")  # t2, version 2
    muted = snaps.membership(cid, user, role="moderator", muted_until=until)  # t3, version 3

    assert await feed.deliver(memberships, joined)
    assert await feed.deliver(memberships, muted)
    assert await feed.deliver(memberships, redelivered(promoted))  # handled, changes nothing
    assert not await feed.deliver(memberships, muted)  # the same message again: the inbox has it
    row = await _membership(content, community_id, user)
    assert (row.role, row.version) == ("moderator", 3)
    assert row.muted_until is not None and abs(row.muted_until - until) < timedelta(seconds=1)
    url = f"/communities/{community_id}/posts"
    r = await content.client.post(url, json=POST, headers=identities.headers(user))
    assert r.status_code == 403 and r.json()["type"] == "urn:hearth:problem:muted"

    # An exit delivered before the join it followed: the join never resurrects the member.
    gone = uuid.uuid4()
    join = snaps.membership(cid, gone)
    removed = snaps.membership(cid, gone, status="removed")
    assert await feed.deliver(memberships, removed)
    assert await feed.deliver(memberships, join)
    assert (await _membership(content, community_id, gone)).status == "removed"
    r = await content.client.post(url, json=POST, headers=identities.headers(gone))
    assert r.status_code == 403 and r.json()["type"] == "urn:hearth:problem:removed"


async def test_community_snapshots_out_of_order(
    content: RunningService, feed: Any, identities: Identities
) -> None:
    community_id, owner = uuid.uuid4(), uuid.uuid4()
    snaps = feed.snapshots
    created = snaps.community(community_id, owner, name="Original", visibility="private")
    renamed = snaps.community(community_id, owner, name="Renamed", visibility="public")
    archived = snaps.community(community_id, owner, name="Renamed", archived=True)
    for envelope in (archived, renamed, created):  # newest first
        assert await feed.deliver(memberships, envelope)
    async with content.runtime.db.session() as session:
        row = await session.get(Community, community_id)
    assert row is not None and row.archived and row.version == 3
    assert (row.name, row.visibility, row.owner_id) == ("Renamed", "public", owner)

    await feed.member(str(community_id), owner, role="owner")
    url = f"/communities/{community_id}/posts"
    r = await content.client.post(url, json=POST, headers=identities.headers(owner))
    assert r.status_code == 409 and r.json()["type"] == "urn:hearth:problem:community-archived"

    restored = snaps.community(community_id, owner, name="Renamed")
    assert await feed.deliver(memberships, restored)
    # The archive redelivered later (older than the restore) does not archive it again.
    assert await feed.deliver(memberships, redelivered(archived))
    r = await content.client.post(url, json=POST, headers=identities.headers(owner))
    assert r.status_code == 201, r.text
