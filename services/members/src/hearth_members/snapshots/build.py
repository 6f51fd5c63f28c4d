"""Snapshots from members' rows: a membership's with its tier and privileges, a community's."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, select

from hearth_members.communities.models import Community
from hearth_members.membership.models import Membership
from hearth_members.snapshots.events import CommunitySnapshot, MembershipSnapshot
from hearth_members.tiers.models import DEFAULT_PRIVILEGES, MemberTier, Tier, TierRules

_TIERS = MemberTier.__table__  # type: ignore[attr-defined]
_RULES = TierRules.__table__  # type: ignore[attr-defined]


def community_snapshot(community: Community) -> CommunitySnapshot:
    """The snapshot of a community as it stands in this session."""
    return CommunitySnapshot(
        community_id=community.id,
        name=community.name,
        kind=community.kind,
        visibility=community.visibility,
        join_policy=community.join_policy,
        owner_id=community.owner_id,
        archived=community.archived_at is not None,
        archived_at=community.archived_at,
        created_at=community.created_at,
        version=community.version,
    )


def membership_snapshots(
    conn: Connection, memberships: Iterable[Membership]
) -> list[MembershipSnapshot]:
    """The snapshots of these memberships: two queries per community for tiers and privileges.

    Sync on purpose: it runs inside flush hooks (and, through `run_sync`, in the republisher).
    """
    rows = list(memberships)
    by_community: dict[uuid.UUID, list[Membership]] = {}
    for m in rows:
        by_community.setdefault(m.community_id, []).append(m)
    out: list[MembershipSnapshot] = []
    for community_id, group in by_community.items():
        privileges = conn.execute(
            select(_RULES.c.privileges).where(_RULES.c.community_id == community_id)
        ).scalar()
        grants: dict[str, list[str]] = privileges or DEFAULT_PRIVILEGES
        tiers: dict[Any, Any] = dict(
            conn.execute(
                select(_TIERS.c.user_id, _TIERS.c.tier).where(
                    _TIERS.c.community_id == community_id,
                    _TIERS.c.user_id.in_([m.user_id for m in group]),
                )
            ).all()
        )
        for m in group:
            tier = str(tiers.get(m.user_id, Tier.regular))
            out.append(
                MembershipSnapshot(
                    community_id=m.community_id,
                    user_id=m.user_id,
                    membership_id=m.id,
                    role=m.role,
                    status=m.status,
                    muted_until=m.muted_until,
                    tier=tier,
                    privileges=sorted(grants.get(tier, [])),
                    joined_at=m.joined_at,
                    version=m.version,
                )
            )
    return out
