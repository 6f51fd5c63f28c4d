"""Events of notifications."""

from __future__ import annotations

import uuid
from datetime import datetime

from servicekit.events import Event, event_type


@event_type("members.notification.created.v1")
class NotificationCreated(Event):
    """A notification was put in a person's inbox (no title or body: they may be personal)."""

    notification_id: uuid.UUID
    user_id: uuid.UUID
    kind: str
    community_id: uuid.UUID | None = None
    created_at: datetime
