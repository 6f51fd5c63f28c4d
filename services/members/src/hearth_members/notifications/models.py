"""The notification inbox table, and the durable delivery queue beyond the inbox."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field

from hearth_members.models import MembersModel
from servicekit.ids import utcnow, uuid7
from servicekit.types import UtcDateTime


class Notification(MembersModel, table=True):
    """One message in one person's inbox (welcome, application result, notice, nudge...)."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_id_id", "user_id", "id"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    user_id: uuid.UUID
    kind: str = Field(max_length=60)
    title: str = Field(max_length=200)
    body: str = Field(max_length=4000)
    community_id: uuid.UUID | None = None
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    read_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class NotificationPublic(MembersModel):
    """A notification as its recipient sees it."""

    id: uuid.UUID
    kind: str
    title: str
    body: str
    community_id: uuid.UUID | None
    data: dict[str, Any]
    created_at: datetime
    read_at: datetime | None


class UnreadCount(MembersModel):
    """How many notifications the caller has not read."""

    unread: int


class MarkedRead(MembersModel):
    """How many notifications a mark-all-read changed."""

    marked: int


class DeliveryStatus(StrEnum):
    """Where one notification stands on one channel beyond the inbox."""

    pending = "pending"  # waiting for its (next) attempt at next_attempt_at
    sending = "sending"  # claimed by a sender; comes back when its lease (next_attempt_at) ends
    delivered = "delivered"  # the channel accepted it
    failed = "failed"  # every attempt failed (max attempts); operators look at these
    dropped = "dropped"  # never sent by design: no address on file, or the recipient deleted


OPEN_DELIVERY_STATUSES = (DeliveryStatus.pending, DeliveryStatus.sending)


class NotificationDelivery(MembersModel, table=True):
    """One notification on one channel (webhook, smtp): written with the notification, sent later.

    Holds no message text and no address: the sender reads both at send time, so a member who
    deletes their data in between is not mailed at their old address.
    """

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        UniqueConstraint("notification_id", "channel", name="uq_notification_delivery_channel"),
        # The sender's claim: open rows whose next attempt (or lease end) has come.
        Index("ix_notification_deliveries_due", "status", "next_attempt_at"),
        # The operators' list by status, newest first.
        Index("ix_notification_deliveries_status_id", "status", "id"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    notification_id: uuid.UUID = Field(foreign_key="notifications.id")
    # The recipient, copied from the notification so a deletion request finds its open rows.
    user_id: uuid.UUID = Field(index=True)
    channel: str = Field(max_length=20)
    status: DeliveryStatus = DeliveryStatus.pending
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default_factory=utcnow, sa_type=UtcDateTime)
    last_error: str | None = Field(default=None, max_length=200)
    delivered_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class NotificationDeliveryPublic(MembersModel):
    """A delivery as operators see it (no message text, no address)."""

    id: uuid.UUID
    notification_id: uuid.UUID
    user_id: uuid.UUID
    channel: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    updated_at: datetime
