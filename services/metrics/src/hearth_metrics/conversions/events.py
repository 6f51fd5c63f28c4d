"""Events the conversions package publishes."""

from __future__ import annotations

import uuid
from datetime import datetime

from servicekit.events import Event, event_type


@event_type("metrics.conversion.recorded.v1")
class ConversionRecorded(Event):
    """A business system's conversion was recorded (once per caller id, however often sent)."""

    conversion_id: uuid.UUID
    kind: str
    community_id: uuid.UUID
    user_id: uuid.UUID | None = None
    activity_id: uuid.UUID | None = None
    invite_channel: str | None = None
    value: float | None = None
    occurred_at: datetime
