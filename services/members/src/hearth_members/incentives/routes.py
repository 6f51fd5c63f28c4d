"""Incentive routes: rules, settings, ledger, leaderboards, badges and perks."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, status

from hearth_members.incentives import service
from hearth_members.incentives.models import (
    BadgeAwardPublic,
    BadgeCreate,
    BadgeGrantCreate,
    BadgePublic,
    BadgeRevokeRequest,
    IncentiveSettingsPublic,
    IncentiveSettingsUpdate,
    Leaderboard,
    MemberIncentives,
    PerkCreate,
    PerkPublic,
    PerkRedemptionPublic,
    PerkUpdate,
    PointAdjustmentCreate,
    PointEntryPublic,
    PointRulesPublic,
    PointRulesUpdate,
)
from servicekit.deps import UnitOfWorkDep
from servicekit.identity import CurrentPrincipal
from servicekit.pagination import Page, PageDep, make_page

router = APIRouter(tags=["incentives"])
BASE = "/communities/{community_id}"


class AdjustmentPublic(PointEntryPublic):
    """A manual ledger entry and the balance after it."""

    balance: int


@router.get(BASE + "/point-rules")
async def get_point_rules(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> PointRulesPublic:
    """How points are earned in a community (defaults plus its overrides)."""
    return await service.get_rules(uow=uow, community_id=community_id, actor=actor)


@router.put(BASE + "/point-rules")
async def put_point_rules(
    community_id: uuid.UUID, body: PointRulesUpdate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> PointRulesPublic:
    """Override the points of some sources (owners, admins, staff)."""
    return await service.set_rules(uow=uow, community_id=community_id, data=body, actor=actor)


@router.get(BASE + "/incentive-settings")
async def get_incentive_settings(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> IncentiveSettingsPublic:
    """A community's incentive settings."""
    found = await service.get_settings(uow=uow, community_id=community_id, actor=actor)
    return IncentiveSettingsPublic.model_validate(found, from_attributes=True)


@router.put(BASE + "/incentive-settings")
async def put_incentive_settings(
    community_id: uuid.UUID,
    body: IncentiveSettingsUpdate,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
) -> IncentiveSettingsPublic:
    """Switch leaderboards and rankings on or off (owners, admins, staff)."""
    found = await service.set_settings(uow=uow, community_id=community_id, data=body, actor=actor)
    return IncentiveSettingsPublic.model_validate(found, from_attributes=True)


@router.post(BASE + "/points/adjustments", status_code=status.HTTP_201_CREATED)
async def adjust_points(
    community_id: uuid.UUID,
    body: PointAdjustmentCreate,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
) -> AdjustmentPublic:
    """Award or deduct points by hand with a reason (owners, admins, staff)."""
    entry, balance = await service.adjust(
        uow=uow, community_id=community_id, data=body, actor=actor
    )
    return AdjustmentPublic.model_validate({**entry.model_dump(), "balance": balance})


@router.get(BASE + "/members/{user_id}/points")
async def member_ledger(
    community_id: uuid.UUID,
    user_id: uuid.UUID,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
    page: PageDep,
) -> Page[PointEntryPublic]:
    """A member's ledger, newest first (the member, owners, admins, staff)."""
    rows = await service.ledger(
        uow=uow, community_id=community_id, user_id=user_id, actor=actor, page=page
    )
    items = [PointEntryPublic.model_validate(e, from_attributes=True) for e in rows]
    return make_page(items, page.limit, lambda e: [str(e.id)])


@router.get(BASE + "/members/{user_id}/incentives")
async def member_incentives(
    community_id: uuid.UUID, user_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> MemberIncentives:
    """A member's balance, badges, titles, tier and rank."""
    return await service.standing(uow=uow, community_id=community_id, user_id=user_id, actor=actor)


@router.get(BASE + "/leaderboard")
async def leaderboard(
    community_id: uuid.UUID,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
    window: Literal["7d", "30d", "all"] = "all",
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> Leaderboard:
    """The top members by points earned in the window (403 when the community switched it off)."""
    return await service.leaderboard(
        uow=uow, community_id=community_id, window=window, limit=limit, actor=actor
    )


@router.post(BASE + "/badges", status_code=status.HTTP_201_CREATED)
async def create_badge(
    community_id: uuid.UUID, body: BadgeCreate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> BadgePublic:
    """Define a badge or title, optionally awarded automatically by a rule."""
    badge = await service.create_badge(uow=uow, community_id=community_id, data=body, actor=actor)
    return BadgePublic.model_validate(badge, from_attributes=True)


@router.get(BASE + "/badges")
async def list_badges(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal, page: PageDep
) -> Page[BadgePublic]:
    """A community's badges and titles."""
    rows = await service.list_badges(uow=uow, community_id=community_id, actor=actor, page=page)
    items = [BadgePublic.model_validate(b, from_attributes=True) for b in rows]
    return make_page(items, page.limit, lambda b: [str(b.id)])


@router.post(BASE + "/badges/{badge_id}/grants", status_code=status.HTTP_201_CREATED)
async def grant_badge(
    community_id: uuid.UUID,
    badge_id: uuid.UUID,
    body: BadgeGrantCreate,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
) -> BadgeAwardPublic:
    """Grant a badge or title to a member by hand."""
    award, badge = await service.grant_badge(
        uow=uow, community_id=community_id, badge_id=badge_id, data=body, actor=actor
    )
    return service.award_public(award, badge)


@router.post(BASE + "/badges/{badge_id}/grants/{user_id}/revoke")
async def revoke_badge(
    community_id: uuid.UUID,
    badge_id: uuid.UUID,
    user_id: uuid.UUID,
    body: BadgeRevokeRequest,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
) -> BadgeAwardPublic:
    """Revoke a member's badge or title with a reason."""
    award, badge = await service.revoke_badge(
        uow=uow,
        community_id=community_id,
        badge_id=badge_id,
        user_id=user_id,
        data=body,
        actor=actor,
    )
    return service.award_public(award, badge)


@router.post(BASE + "/perks", status_code=status.HTTP_201_CREATED)
async def create_perk(
    community_id: uuid.UUID, body: PerkCreate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> PerkPublic:
    """Offer a perk redeemable against points."""
    perk = await service.create_perk(uow=uow, community_id=community_id, data=body, actor=actor)
    return PerkPublic.model_validate(perk, from_attributes=True)


@router.patch(BASE + "/perks/{perk_id}")
async def update_perk(
    community_id: uuid.UUID,
    perk_id: uuid.UUID,
    body: PerkUpdate,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
) -> PerkPublic:
    """Change, restock or withdraw (`active: false`) a perk."""
    perk = await service.update_perk(
        uow=uow, community_id=community_id, perk_id=perk_id, data=body, actor=actor
    )
    return PerkPublic.model_validate(perk, from_attributes=True)


@router.get(BASE + "/perks")
async def list_perks(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal, page: PageDep
) -> Page[PerkPublic]:
    """A community's perks on offer."""
    rows = await service.list_perks(uow=uow, community_id=community_id, actor=actor, page=page)
    items = [PerkPublic.model_validate(p, from_attributes=True) for p in rows]
    return make_page(items, page.limit, lambda p: [str(p.id)])


@router.post(BASE + "/perks/{perk_id}/redemptions", status_code=status.HTTP_201_CREATED)
async def redeem_perk(
    community_id: uuid.UUID, perk_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> PerkRedemptionPublic:
    """Spend the caller's points on a perk (409 when the balance or stock is short)."""
    redemption, balance = await service.redeem(
        uow=uow, community_id=community_id, perk_id=perk_id, actor=actor
    )
    return PerkRedemptionPublic.model_validate({**redemption.model_dump(), "balance": balance})
