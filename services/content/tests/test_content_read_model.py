"""Content's read models of communities and memberships: idempotent, tolerant, order-safe."""

from __future__ import annotations

import uuid

from hearth_content.consumers import memberships
from hearth_content.models import Community, Membership
from servicekit.testing.harness import RunningService
from servicekit.testing.membership import MEMBERSHIP, redelivered


async def test_snapshots_apply_once_and_newest_wins(content: RunningService, feed) -> None:
    community_id, user = uuid.uuid4(), uuid.uuid4()
    snaps = feed.snapshots
    older = snaps.membership(community_id, user, role="member")
    newer = snaps.membership(community_id, user, role="moderator")
    assert await feed.deliver(memberships, newer)
    assert not await feed.deliver(memberships, newer)  # redelivery: the inbox has it
    assert await feed.deliver(memberships, older)  # handled, but it must not roll back the row
    assert await feed.deliver(memberships, redelivered(newer))  # same version again: no change

    # A newer producer may add fields and roles: stored, not fatal.
    future = feed.envelope(
        MEMBERSHIP,
        {**snaps.membership(community_id, uuid.uuid4(), role="ambassador").data, "extra": [1]},
    )
    assert await feed.deliver(memberships, future)
    assert await feed.deliver(
        memberships, snaps.community(community_id, user, name="Partners", visibility="private")
    )

    async with content.runtime.db.session() as session:
        row = await session.get(Membership, (community_id, user))
        community = await session.get(Community, community_id)
        ambassador = await session.get(
            Membership, (community_id, uuid.UUID(future.data["user_id"]))
        )
    assert row is not None and (row.role, row.status, row.version) == ("moderator", "active", 2)
    assert community is not None and (community.name, community.visibility) == (
        "Partners",
        "private",
    )
    assert ambassador is not None and ambassador.role == "ambassador"
