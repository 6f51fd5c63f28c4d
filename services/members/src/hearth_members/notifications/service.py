"""Notification use cases: `notify()` for every other module, and the recipient's inbox."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, cast

from sqlalchemy import event, func, update
from sqlmodel import col, select

from hearth_members.cursors import after_id
from hearth_members.events import NotificationCreated
from hearth_members.notifications.delivery import Delivery, configured_adapters, deliver_all
from hearth_members.notifications.models import Notification
from hearth_members.settings import MembersSettings
from servicekit.db import affected_rows
from servicekit.deps import UnitOfWork
from servicekit.ids import utcnow
from servicekit.pagination import PageParams
from servicekit.problems import not_found
from servicekit.runtime import runtime_of

_PENDING = "hearth_members.pending_deliveries"
_HOOKED = "hearth_members.delivery_hooked"
_tasks: set[asyncio.Task[None]] = set()  # strong references until each delivery finishes


async def notify(
    *,
    uow: UnitOfWork,
    user_id: uuid.UUID,
    kind: str,
    title: str,
    body: str,
    community_id: uuid.UUID | None = None,
    data: dict[str, Any] | None = None,
) -> Notification:
    """Put a notification in a user's inbox in the caller's transaction; deliver it after commit."""
    notification = Notification(
        user_id=user_id,
        kind=kind[:60],
        title=title[:200],
        body=body[:4000],
        community_id=community_id,
        data=data or {},
    )
    uow.session.add(notification)
    await uow.record(
        NotificationCreated(
            notification_id=notification.id,
            user_id=user_id,
            kind=notification.kind,
            community_id=community_id,
            created_at=notification.created_at,
        ),
        subject=str(user_id),
    )
    _after_commit(uow, Delivery.model_validate(notification, from_attributes=True))
    return notification


def _after_commit(uow: UnitOfWork, delivery: Delivery) -> None:
    sync_session = uow.session.sync_session
    sync_session.info.setdefault(_PENDING, []).append(delivery)
    if sync_session.info.get(_HOOKED):
        return
    sync_session.info[_HOOKED] = True
    runtime = runtime_of(uow.session)

    @event.listens_for(sync_session, "after_commit")
    def _committed(session: Any) -> None:
        pending: list[Delivery] = session.info.pop(_PENDING, [])
        settings = cast(MembersSettings, runtime.settings)
        adapters = configured_adapters(settings, _address_lookup(runtime))
        if pending and adapters:
            task = asyncio.get_running_loop().create_task(
                deliver_all(adapters, pending, settings.notify_webhook_attempts)
            )
            _tasks.add(task)
            task.add_done_callback(_tasks.discard)

    @event.listens_for(sync_session, "after_rollback")
    def _rolled_back(session: Any) -> None:
        session.info.pop(_PENDING, None)  # nothing is delivered for a transaction that failed


def _address_lookup(runtime: Any) -> Any:
    try:
        from hearth_members.profiles.service import email_address_of
    except ImportError:  # profiles not installed: SMTP has nobody to write to
        return None

    async def lookup(user_id: uuid.UUID) -> str | None:
        return await email_address_of(runtime=runtime, user_id=user_id)

    return lookup


async def list_notifications(
    *, uow: UnitOfWork, user_id: uuid.UUID, page: PageParams, unread_only: bool = False
) -> list[Notification]:
    """The user's notifications, newest first (limit+1 rows)."""
    stmt = (
        select(Notification)
        .where(Notification.user_id == user_id)
        .order_by(col(Notification.id).desc())
        .limit(page.limit + 1)
    )
    if unread_only:
        stmt = stmt.where(col(Notification.read_at).is_(None))
    if page.after:
        stmt = stmt.where(col(Notification.id) < after_id(page))
    return list((await uow.session.exec(stmt)).all())


async def unread_count(*, uow: UnitOfWork, user_id: uuid.UUID) -> int:
    """How many of the user's notifications are unread."""
    stmt = select(func.count()).where(
        Notification.user_id == user_id, col(Notification.read_at).is_(None)
    )
    return int((await uow.session.exec(stmt)).one())


async def mark_read(
    *, uow: UnitOfWork, user_id: uuid.UUID, notification_id: uuid.UUID
) -> Notification:
    """Mark one of the user's notifications read (someone else's is 'not found')."""
    notification = await uow.session.get(Notification, notification_id)
    if notification is None or notification.user_id != user_id:
        raise not_found("notification", notification_id)
    if notification.read_at is None:
        notification.read_at = utcnow()
        uow.session.add(notification)
        await uow.commit()
    return notification


async def mark_all_read(*, uow: UnitOfWork, user_id: uuid.UUID) -> int:
    """Mark every unread notification of the user read; returns how many changed."""
    result = await uow.session.exec(
        update(Notification)
        .where(col(Notification.user_id) == user_id, col(Notification.read_at).is_(None))
        .values(read_at=utcnow())
    )
    await uow.commit()
    return affected_rows(result)
