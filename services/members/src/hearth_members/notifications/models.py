"""The notification inbox table."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
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
