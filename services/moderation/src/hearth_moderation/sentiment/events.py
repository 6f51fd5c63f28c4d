"""Events sentiment monitoring publishes (business systems react to alerts)."""

from __future__ import annotations

import uuid
from datetime import datetime

from servicekit.events import Event, event_type


@event_type("moderation.sentiment.alert_opened.v1")
class SentimentAlertOpened(Event):
    """A community's negative share spiked against its own baseline: an alert is open."""

    alert_id: uuid.UUID
    community_id: uuid.UUID
    bucket_start: datetime
    total: int
    negative: int
    share: float
    baseline_mean: float
    baseline_stddev: float
    z: float
    opened_at: datetime


@event_type("moderation.sentiment.alert_acknowledged.v1")
class SentimentAlertAcknowledged(Event):
    """Someone on the community's team took the alert; `owner_id` handles it."""

    alert_id: uuid.UUID
    community_id: uuid.UUID
    owner_id: uuid.UUID
    actor_id: uuid.UUID
    acknowledged_at: datetime


@event_type("moderation.sentiment.alert_resolved.v1")
class SentimentAlertResolved(Event):
    """The alert was resolved; a later spike opens a new one."""

    alert_id: uuid.UUID
    community_id: uuid.UUID
    owner_id: uuid.UUID | None = None
    actor_id: uuid.UUID
    note: str | None = None
    resolved_at: datetime
