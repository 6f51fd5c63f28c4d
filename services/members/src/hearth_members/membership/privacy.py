"""Memberships' and applications' part of a person's data export and erasure (app.py)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import update
from sqlmodel import col

from hearth_members.membership.models import Application, Membership
from hearth_members.profiles.privacy import rows_of
from servicekit.deps import UnitOfWork


async def export(uow: UnitOfWork, user_id: uuid.UUID) -> dict[str, Any]:
    """The person's memberships and applications."""
    return {
        "memberships": await rows_of(uow, Membership, Membership.user_id, user_id),
        "applications": await rows_of(uow, Application, Application.user_id, user_id),
    }


async def erase(uow: UnitOfWork, user_id: uuid.UUID) -> None:
    """Blank free-text application answers: they may hold personal data."""
    await uow.session.exec(
        update(Application)
        .where(col(Application.user_id) == user_id)
        .values(answers={})
        .execution_options(synchronize_session=False)
    )
