"""Incentives' part of a person's data export (registered in app.py)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import col, select

from hearth_members.incentives.models import (
    Badge,
    BadgeAward,
    Perk,
    PerkRedemption,
    PointBalance,
    PointEntry,
)
from hearth_members.profiles.privacy import rows_of
from servicekit.deps import UnitOfWork


async def export(uow: UnitOfWork, user_id: uuid.UUID) -> dict[str, Any]:
    """The person's ledger, balances, badges and titles (revoked included), redemptions."""
    badges = (
        await uow.session.exec(
            select(BadgeAward, Badge)
            .join(Badge, col(Badge.id) == col(BadgeAward.badge_id))
            .where(BadgeAward.user_id == user_id)
            .order_by(col(BadgeAward.id))
        )
    ).all()
    redemptions = (
        await uow.session.exec(
            select(PerkRedemption, Perk)
            .join(Perk, col(Perk.id) == col(PerkRedemption.perk_id))
            .where(PerkRedemption.user_id == user_id)
            .order_by(col(PerkRedemption.id))
        )
    ).all()
    return {
        "ledger": await rows_of(uow, PointEntry, PointEntry.user_id, user_id),
        "balances": await rows_of(uow, PointBalance, PointBalance.user_id, user_id),
        "badges": [  # badges and titles (`kind`), revoked ones included
            {**award.model_dump(mode="json"), "name": badge.name, "kind": badge.kind}
            for award, badge in badges
        ],
        "redemptions": [
            {**redemption.model_dump(mode="json"), "perk": perk.name}
            for redemption, perk in redemptions
        ],
    }
