"""Notifications' part of a person's data export and erasure (registered in app.py)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import update
from sqlmodel import col

from hearth_members.notifications.models import Notification
from hearth_members.notifications.service import drop_open_deliveries
from hearth_members.profiles.privacy import rows_of
from servicekit.deps import UnitOfWork


async def export(uow: UnitOfWork, user_id: uuid.UUID) -> dict[str, Any]:
    """The person's notifications."""
    return {"notifications": await rows_of(uow, Notification, Notification.user_id, user_id)}


async def erase(uow: UnitOfWork, user_id: uuid.UUID) -> None:
    """Blank notification bodies (they may hold personal data) and drop unsent deliveries."""
    await uow.session.exec(
        update(Notification)
        .where(col(Notification.user_id) == user_id)
        .values(title="(deleted)", body="", data={})
        .execution_options(synchronize_session=False)
    )
    # E-mails and webhooks not sent yet never go out: the address is gone, and the sender
    # reads it at send time anyway, so one already claimed finds none (or the blanked text).
    await drop_open_deliveries(uow=uow, user_id=user_id, reason="recipient's data deleted")
