"""The caller's own inbox (/me/notifications) and the operators' view of the delivery queue."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from hearth_members.notifications import service
from hearth_members.notifications.models import (
    DeliveryStatus,
    MarkedRead,
    NotificationDeliveryPublic,
    NotificationPublic,
    UnreadCount,
)
from servicekit.deps import UnitOfWorkDep
from servicekit.identity import CurrentPrincipal, StaffDep
from servicekit.pagination import Page, PageDep, make_page

router = APIRouter(tags=["notifications"])


@router.get("/me/notifications")
async def list_notifications(
    uow: UnitOfWorkDep, actor: CurrentPrincipal, page: PageDep, unread: bool = Query(False)
) -> Page[NotificationPublic]:
    """The caller's notifications, newest first."""
    rows = await service.list_notifications(
        uow=uow, user_id=actor.subject, page=page, unread_only=unread
    )
    items = [NotificationPublic.model_validate(n, from_attributes=True) for n in rows]
    return make_page(items, page.limit, lambda n: [str(n.id)])


@router.get("/me/notifications/unread-count")
async def unread_count(uow: UnitOfWorkDep, actor: CurrentPrincipal) -> UnreadCount:
    """How many of the caller's notifications are unread."""
    return UnreadCount(unread=await service.unread_count(uow=uow, user_id=actor.subject))


@router.post("/me/notifications/read-all")
async def mark_all_read(uow: UnitOfWorkDep, actor: CurrentPrincipal) -> MarkedRead:
    """Mark all the caller's notifications read."""
    return MarkedRead(marked=await service.mark_all_read(uow=uow, user_id=actor.subject))


@router.post("/me/notifications/{notification_id}/read")
async def mark_read(
    notification_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> NotificationPublic:
    """Mark one of the caller's notifications read."""
    n = await service.mark_read(uow=uow, user_id=actor.subject, notification_id=notification_id)
    return NotificationPublic.model_validate(n, from_attributes=True)


@router.get("/admin/notification-deliveries")
async def list_deliveries(
    uow: UnitOfWorkDep,
    _: StaffDep,
    page: PageDep,
    status: Annotated[DeliveryStatus | None, Query()] = None,
) -> Page[NotificationDeliveryPublic]:
    """Webhook and e-mail deliveries of notifications, newest first, by status (staff)."""
    rows = await service.list_deliveries(uow=uow, page=page, status=status)
    items = [NotificationDeliveryPublic.model_validate(d, from_attributes=True) for d in rows]
    return make_page(items, page.limit, lambda d: [str(d.id)])


@router.post("/admin/notification-deliveries/{delivery_id}/retry")
async def retry_delivery(
    delivery_id: uuid.UUID, uow: UnitOfWorkDep, actor: StaffDep
) -> NotificationDeliveryPublic:
    """Send a failed delivery again, with a fresh attempt budget (staff; audited)."""
    row = await service.retry_delivery(uow=uow, delivery_id=delivery_id, actor_id=actor.subject)
    return NotificationDeliveryPublic.model_validate(row, from_attributes=True)
