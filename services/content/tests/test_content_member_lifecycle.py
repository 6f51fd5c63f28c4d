"""Members' lifecycle events (mute, exits, roles, archive) reach content's read models and gates.

The first tests drive the real members service over its HTTP API and let its events reach content
through real NATS; the last ones hand content envelopes with explicit times, out of order.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from hearth_content.consumers import memberships
from hearth_content.models import Community, Membership
from servicekit.ids import utcnow, uuid7
from servicekit.testing.harness import Identities, RunningService, eventually

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
    for who in (leaver, removed, banned):
        r = await content.client.post(url, json=POST, headers=identities.headers(who))
        assert r.status_code == 403 and r.json()["type"] == "urn:hearth:problem:not-a-member"
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


# --- Out of order: envelopes with explicit times ----------------------------------------------


def _member_event(
    feed: Any, fact: str, community_id: str, user: uuid.UUID, at: datetime, **data: Any
) -> Any:
    return feed.envelope(
        f"hearth.members.member.{fact}.v1",
        {"community_id": community_id, "user_id": str(user), **data},
        time=at,
    )


async def test_older_events_never_resurrect_or_unmute(
    content: RunningService, feed: Any, identities: Identities
) -> None:
    community_id = await feed.community()
    url = f"/communities/{community_id}/posts"
    t0 = utcnow() - timedelta(minutes=1)  # every explicit time below is already past
    joined = {"membership_id": str(uuid7()), "role": "member", "joined_at": t0.isoformat()}

    # Removed (newer) is delivered before the join it followed: the join must not win.
    gone = uuid.uuid4()
    removed = _member_event(
        feed,
        "removed",
        community_id,
        gone,
        t0 + timedelta(seconds=2),
        membership_id=joined["membership_id"],
        removed_by=None,
        reason="spam",
        removed_at=t0.isoformat(),
    )
    assert await feed.deliver(memberships, removed)
    assert await feed.deliver(
        memberships, _member_event(feed, "joined", community_id, gone, t0, **joined)
    )
    row = await _membership(content, community_id, gone)
    assert row.status == "removed"
    assert str(row.membership_id) == joined["membership_id"]  # an old fact may fill a gap
    r = await content.client.post(url, json=POST, headers=identities.headers(gone))
    assert r.status_code == 403

    # A mute delivered before the join does not make anyone a member; the late join does.
    quiet = uuid.uuid4()
    until = t0 + timedelta(hours=1)
    mute = _member_event(
        feed,
        "muted",
        community_id,
        quiet,
        t0 + timedelta(seconds=1),
        muted_until=until.isoformat(),
        reason="x",
        muted_at=t0.isoformat(),
    )
    assert await feed.deliver(memberships, mute)
    assert (await _membership(content, community_id, quiet)).status is None
    r = await content.client.post(url, json=POST, headers=identities.headers(quiet))
    assert r.status_code == 403 and r.json()["type"] == "urn:hearth:problem:not-a-member"
    assert await feed.deliver(
        memberships, _member_event(feed, "joined", community_id, quiet, t0, **joined)
    )
    r = await content.client.post(url, json=POST, headers=identities.headers(quiet))
    assert r.status_code == 403 and r.json()["type"] == "urn:hearth:problem:muted"

    # The lift (newer) then the mute again (older, redelivered): still lifted.
    lift = _member_event(
        feed,
        "muted",
        community_id,
        quiet,
        t0 + timedelta(seconds=3),
        muted_until=(t0 + timedelta(seconds=3)).isoformat(),
        reason="y",
        muted_at=t0.isoformat(),
    )
    assert await feed.deliver(memberships, lift)
    stale = mute.model_copy(update={"id": uuid7()})
    assert await feed.deliver(memberships, stale)
    r = await content.client.post(url, json=POST, headers=identities.headers(quiet))
    assert r.status_code == 201, r.text

    # Role changes: the newer role stays.
    for role, delay in (("moderator", 5), ("admin", 4)):
        event = _member_event(
            feed,
            "role_changed",
            community_id,
            quiet,
            t0 + timedelta(seconds=delay),
            old_role="member",
            new_role=role,
            changed_by=str(uuid.uuid4()),
            changed_at=t0.isoformat(),
        )
        assert await feed.deliver(memberships, event)
    assert (await _membership(content, community_id, quiet)).role == "moderator"


async def test_community_events_out_of_order(
    content: RunningService, feed: Any, identities: Identities
) -> None:
    community_id, owner = uuid.uuid4(), uuid.uuid4()
    t0 = utcnow() - timedelta(minutes=1)

    def community_event(fact: str, at: datetime, **data: Any) -> Any:
        return feed.envelope(
            f"hearth.members.community.{fact}.v1",
            {"community_id": str(community_id), **data},
            time=at,
        )

    # Archived and a rename arrive before the creation they followed.
    archived = community_event(
        "archived", t0 + timedelta(seconds=2), archived_by=str(owner), archived_at=t0.isoformat()
    )
    assert await feed.deliver(memberships, archived)
    renamed = community_event(
        "updated",
        t0 + timedelta(seconds=1),
        changed=["name"],
        name="Renamed",
        kind="customer",
        join_policy="open",
        visibility="public",
        updated_at=t0.isoformat(),
    )
    assert await feed.deliver(memberships, renamed)
    created = community_event(
        "created",
        t0,
        name="Original",
        kind="customer",
        join_policy="open",
        visibility="private",
        owner_id=str(owner),
        created_at=t0.isoformat(),
    )
    assert await feed.deliver(memberships, created)
    async with content.runtime.db.session() as session:
        row = await session.get(Community, community_id)
    assert row is not None and row.archived
    assert row.name == "Renamed" and row.visibility == "public"  # the newer update wins
    assert row.owner_id == owner and row.created_at is not None  # the creation filled the gaps

    await feed.member(str(community_id), owner, role="owner")
    url = f"/communities/{community_id}/posts"
    r = await content.client.post(url, json=POST, headers=identities.headers(owner))
    assert r.status_code == 409 and r.json()["type"] == "urn:hearth:problem:community-archived"

    restored = community_event(
        "restored", t0 + timedelta(seconds=3), restored_by=str(owner), restored_at=t0.isoformat()
    )
    assert await feed.deliver(memberships, restored)
    # The archive redelivered later (older than the restore) does not archive it again.
    assert await feed.deliver(memberships, archived.model_copy(update={"id": uuid7()}))
    r = await content.client.post(url, json=POST, headers=identities.headers(owner))
    assert r.status_code == 201, r.text
