"""Tiers' part of a person's data export (registered in app.py)."""

from __future__ import annotations

import uuid
from typing import Any

from hearth_members.profiles.privacy import rows_of
from hearth_members.tiers.models import MemberActivity, MemberTier
from servicekit.deps import UnitOfWork


async def export(uow: UnitOfWork, user_id: uuid.UUID) -> dict[str, Any]:
    """The person's tiers and activity counts."""
    return {
        "tiers": await rows_of(uow, MemberTier, MemberTier.user_id, user_id),
        "activity": await rows_of(uow, MemberActivity, MemberActivity.user_id, user_id),
    }
