"""Events the gateway publishes (stream HEARTH_GATEWAY, through its own outbox and relay)."""

from __future__ import annotations

import uuid
from datetime import datetime

from servicekit.events import Event, event_type


@event_type("gateway.webhook.disabled.v1")
class WebhookDisabled(Event):
    """A webhook subscription was disabled automatically after persistent delivery failure."""

    subscription_id: uuid.UUID
    created_by: uuid.UUID  # the platform admin who created it: members notifies them
    url_origin: str  # scheme://host[:port] only: paths and queries may carry tokens
    reason: str
    failure_streak: int
    disabled_at: datetime
