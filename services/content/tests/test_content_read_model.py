"""Content's read models of communities and memberships: idempotent, tolerant, order-safe."""

from __future__ import annotations

import uuid
from datetime import timedelta

from hearth_content.consumers import memberships
from hearth_content.models import Community, Membership
from servicekit.ids import utcnow, uuid7
from servicekit.testing.harness import RunningService


def _joined(community_id: uuid.UUID, user: uuid.UUID, role: str = "member", **extra) -> dict:
    return {
        "community_id": str(community_id),
        "user_id": str(user),
        "membership_id": str(uuid7()),
        "role": role,
        "joined_at": utcnow().isoformat(),
        **extra,
    }


async def test_membership_events_apply_once_and_in_order(content: RunningService, feed) -> None:
    community_id, user = uuid.uuid4(), uuid.uuid4()
    now = utcnow()
    newer = feed.envelope(
        "hearth.members.member.joined.v1", _joined(community_id, user, "moderator"), time=now
    )
    assert await feed.deliver(memberships, newer)
    assert not await feed.deliver(memberships, newer)  # redelivery: the inbox has it
    older = feed.envelope(
        "hearth.members.member.joined.v1",
        _joined(community_id, user, "member"),
        time=now - timedelta(seconds=5),
    )
    assert await feed.deliver(memberships, older)  # handled, but it must not roll back the row
    tolerant = feed.envelope(
        "hearth.members.member.joined.v1",
        {
            "community_id": str(community_id),
            "user_id": str(uuid.uuid4()),
            "joined_at": now.isoformat(),
            "role": "ambassador",
            "something_new": {"x": 1},
        },
    )
    # Unknown fields and roles are stored, not fatal.
    assert await feed.deliver(memberships, tolerant)

    created = feed.envelope(
        "hearth.members.community.created.v1",
        {
            "community_id": str(community_id),
            "name": "Partners",
            "kind": "partner",
            "join_policy": "approval",
            "visibility": "private",
            "owner_id": str(user),
            "created_at": now.isoformat(),
            "extra": True,
        },
    )
    assert await feed.deliver(memberships, created)
    assert not await feed.deliver(memberships, created)

    async with content.runtime.db.session() as session:
        row = await session.get(Membership, (community_id, user))
        community = await session.get(Community, community_id)
    assert row is not None and row.role == "moderator" and row.status == "active"
    assert community is not None and community.visibility == "private"
    assert community.name == "Partners"
