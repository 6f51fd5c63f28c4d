"""Tier routes: rules and privileges per community, a member's tier, recompute."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from hearth_members.tiers import service
from hearth_members.tiers.models import (
    MemberTierPublic,
    RecomputeResult,
    TierRulesPublic,
    TierRulesUpdate,
)
from servicekit.deps import UnitOfWorkDep
from servicekit.identity import CurrentPrincipal

router = APIRouter(tags=["tiers"])
BASE = "/communities/{community_id}"


@router.get(BASE + "/tier-rules")
async def get_tier_rules(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> TierRulesPublic:
    """A community's tier thresholds and privileges (owners, admins, staff)."""
    rules = await service.get_rules(uow=uow, community_id=community_id, actor=actor)
    return TierRulesPublic.model_validate(rules, from_attributes=True)


@router.put(BASE + "/tier-rules")
async def put_tier_rules(
    community_id: uuid.UUID, body: TierRulesUpdate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> TierRulesPublic:
    """Replace the tier rules; every member's tier is recomputed at once."""
    rules = await service.set_rules(uow=uow, community_id=community_id, data=body, actor=actor)
    return TierRulesPublic.model_validate(rules, from_attributes=True)


@router.post(BASE + "/tiers/recompute")
async def recompute_tiers(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> RecomputeResult:
    """Recompute every member's tier now (owners, admins, staff)."""
    return await service.recompute_now(uow=uow, community_id=community_id, actor=actor)


@router.get(BASE + "/members/{user_id}/tier")
async def member_tier(
    community_id: uuid.UUID, user_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> MemberTierPublic:
    """A member's tier and its privileges (the member, owners, admins, staff)."""
    return await service.member_tier(
        uow=uow, community_id=community_id, user_id=user_id, actor=actor
    )
