"""Notification use cases: `notify()` for every other module, the inbox, the delivery queue."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import event, func, update
from sqlmodel import col, select

from hearth_members.audit.service import audit
from hearth_members.notifications.delivery import configured_channels
from hearth_members.notifications.events import NotificationCreated
from hearth_members.notifications.models import (
    DeliveryStatus,
    Notification,
    NotificationDelivery,
)
from hearth_members.notifications.sender import wake_event
from hearth_members.settings import MembersSettings
from servicekit.db import affected_rows
from servicekit.deps import UnitOfWork
from servicekit.ids import utcnow
from servicekit.pagination import PageParams, after_id
from servicekit.problems import conflict, not_found
from servicekit.runtime import runtime_of, settings_of

_QUEUED = "hearth_members.deliveries_queued"
_HOOKED = "hearth_members.delivery_wake_hooked"


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
    """Put a notification in a user's inbox and queue its deliveries (caller's transaction)."""
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
    runtime = runtime_of(uow.session)
    channels = configured_channels(settings_of(runtime, MembersSettings))
    # Same transaction as the inbox row: a committed notification always has its deliveries,
    # a rolled-back one has none, and a crash after the commit loses nothing.
    for channel in channels:
        uow.session.add(
            NotificationDelivery(
                notification_id=notification.id,
                user_id=user_id,
                channel=channel,
                next_attempt_at=notification.created_at,
            )
        )
    if channels:
        _wake_sender_after_commit(uow)
    return notification


def _wake_sender_after_commit(uow: UnitOfWork) -> None:
    """Run the sender pass as soon as this transaction commits (the tick is only the fallback)."""
    sync_session = uow.session.sync_session
    sync_session.info[_QUEUED] = True
    if sync_session.info.get(_HOOKED):
        return
    sync_session.info[_HOOKED] = True
    wake = wake_event(runtime_of(uow.session))

    @event.listens_for(sync_session, "after_commit")
    def _committed(session: Any) -> None:
        if session.info.pop(_QUEUED, False):
            wake.set()

    @event.listens_for(sync_session, "after_rollback")
    def _rolled_back(session: Any) -> None:
        session.info.pop(_QUEUED, None)  # the rows went with the transaction: nothing to send


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


async def list_deliveries(
    *, uow: UnitOfWork, page: PageParams, status: DeliveryStatus | None = None
) -> list[NotificationDelivery]:
    """Deliveries beyond the inbox, newest first, optionally of one status (limit+1 rows)."""
    stmt = (
        select(NotificationDelivery)
        .order_by(col(NotificationDelivery.id).desc())
        .limit(page.limit + 1)
    )
    if status is not None:
        stmt = stmt.where(NotificationDelivery.status == status)
    if page.after:
        stmt = stmt.where(col(NotificationDelivery.id) < after_id(page))
    return list((await uow.session.exec(stmt)).all())


async def retry_delivery(
    *, uow: UnitOfWork, delivery_id: uuid.UUID, actor_id: uuid.UUID
) -> NotificationDelivery:
    """Queue a failed delivery again with a fresh attempt budget (operators, after a fix)."""
    delivery = await uow.session.get(NotificationDelivery, delivery_id, with_for_update=True)
    if delivery is None:
        raise not_found("notification delivery", delivery_id)
    if delivery.status != DeliveryStatus.failed:
        raise conflict(
            "delivery-not-failed",
            f"only a failed delivery can be retried; this one is {delivery.status.value}",
        )
    now = utcnow()
    previous_attempts = delivery.attempts
    delivery.status, delivery.attempts = DeliveryStatus.pending, 0
    delivery.next_attempt_at, delivery.updated_at = now, now
    uow.session.add(delivery)
    audit(
        uow=uow,
        actor_id=actor_id,
        action="notification_delivery.retried",
        target_type="notification_delivery",
        target_id=delivery.id,
        details={"channel": delivery.channel, "previous_attempts": previous_attempts},
    )
    _wake_sender_after_commit(uow)
    await uow.commit()
    return delivery


async def drop_open_deliveries(*, uow: UnitOfWork, user_id: uuid.UUID, reason: str) -> int:
    """Drop the user's deliveries not yet sent (no commit): they will never go out."""
    now = utcnow()
    result = await uow.session.exec(
        update(NotificationDelivery)
        .where(
            col(NotificationDelivery.user_id) == user_id,
            col(NotificationDelivery.status).in_((DeliveryStatus.pending, DeliveryStatus.sending)),
        )
        .values(
            status=DeliveryStatus.dropped, next_attempt_at=None, last_error=reason, updated_at=now
        )
        .execution_options(synchronize_session=False)
    )
    return affected_rows(result)
