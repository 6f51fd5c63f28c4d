"""Read models from members' snapshots, and each community's metrics policy."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_metrics.communities.models import (
    INTERNAL_KIND,
    Community,
    CommunityPolicy,
    CommunityPolicyPublic,
    CommunityPolicyUpdate,
    Membership,
)
from hearth_metrics.settings import MetricsSettings
from servicekit.db import upsert_insert
from servicekit.deps import UnitOfWork
from servicekit.ids import utcnow
from servicekit.readmodel import apply_snapshot


async def apply_community(*, uow: UnitOfWork, values: Mapping[str, Any]) -> bool:
    """Take a community snapshot unless the read model holds this version or a newer one."""
    return await apply_snapshot(uow.session, Community, values, key=["community_id"])


async def apply_membership(*, uow: UnitOfWork, values: Mapping[str, Any]) -> bool:
    """Take a membership snapshot unless the read model holds this version or a newer one."""
    return await apply_snapshot(uow.session, Membership, values, key=["community_id", "user_id"])


async def membership_of(
    session: AsyncSession, *, community_id: uuid.UUID, user_id: uuid.UUID
) -> Membership | None:
    """The person's membership row (any status), or None."""
    return await session.get(Membership, (community_id, user_id))


@dataclass(frozen=True)
class Policy:
    """A community's effective metrics policy (service defaults filled in)."""

    community_id: uuid.UUID
    kind: str | None
    time_zone: str
    inactive_days: int
    k_floor: int
    rankings_enabled: bool
    published: frozenset[str]

    @property
    def internal(self) -> bool:
        """An employee community: the privacy floor applies."""
        return self.kind == INTERNAL_KIND


async def policy_of(
    session: AsyncSession, *, community_id: uuid.UUID, settings: MetricsSettings
) -> Policy:
    """The community's effective policy: its own settings over the service defaults."""
    community = await session.get(Community, community_id)
    row = await session.get(CommunityPolicy, community_id)
    return Policy(
        community_id=community_id,
        kind=community.kind if community else None,
        time_zone=(row.time_zone if row and row.time_zone else settings.default_time_zone),
        inactive_days=(
            row.inactive_days if row and row.inactive_days else settings.default_inactive_days
        ),
        k_floor=row.k_floor if row and row.k_floor else settings.privacy_k,
        rankings_enabled=bool(row and row.rankings_enabled),
        published=frozenset(row.published) if row else frozenset(),
    )


async def policies(session: AsyncSession, *, settings: MetricsSettings) -> list[Policy]:
    """Every known community's effective policy (communities from snapshots or policies)."""
    ids = set((await session.exec(select(Community.community_id))).all())
    ids |= set((await session.exec(select(CommunityPolicy.community_id))).all())
    return [await policy_of(session, community_id=cid, settings=settings) for cid in sorted(ids)]


def public(policy: Policy, *, updated_at: Any = None) -> CommunityPolicyPublic:
    """The policy as a client reads it."""
    return CommunityPolicyPublic(
        community_id=policy.community_id,
        kind=policy.kind,
        internal=policy.internal,
        time_zone=policy.time_zone,
        inactive_days=policy.inactive_days,
        k_floor=policy.k_floor,
        rankings_enabled=policy.rankings_enabled,
        published=sorted(policy.published),
        updated_at=updated_at,
    )


async def get_policy(
    session: AsyncSession, *, community_id: uuid.UUID, settings: MetricsSettings
) -> CommunityPolicyPublic:
    """The community's effective policy as a client reads it."""
    row = await session.get(CommunityPolicy, community_id)
    policy = await policy_of(session, community_id=community_id, settings=settings)
    return public(policy, updated_at=row.updated_at if row else None)


async def update_policy(
    uow: UnitOfWork,
    *,
    community_id: uuid.UUID,
    change: CommunityPolicyUpdate,
    settings: MetricsSettings,
) -> CommunityPolicyPublic:
    """Change the given fields of a community's metrics policy (creating it on first change)."""
    session = uow.session
    # Create-if-missing in one statement, so two first changes at once cannot collide.
    table: Any = CommunityPolicy.__table__  # type: ignore[attr-defined]
    stmt = upsert_insert(session, table).values(community_id=community_id, published=[])
    await session.execute(stmt.on_conflict_do_nothing(index_elements=["community_id"]))
    row = await session.get(CommunityPolicy, community_id, with_for_update=True)
    assert row is not None
    for name, value in change.model_dump(exclude_unset=True).items():
        if value is not None or name in ("time_zone", "inactive_days", "k_floor"):
            setattr(row, name, value)
    row.updated_at = utcnow()
    await uow.commit()
    return await get_policy(session, community_id=community_id, settings=settings)
