"""What the reports read from other contexts: metrics' conversions, kept per activity.

`hearth.metrics.conversion.recorded.v1` is parsed with this module's own tolerant model (only
the fields it needs, extras ignored); a conversion without an activity is not ours to count.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_events.reports.models import ActivityConversion
from servicekit.consumer import EventConsumer
from servicekit.events import Envelope

conversions = EventConsumer("events__conversions")


class ConversionRecordedFact(BaseModel):
    """The fields of metrics' conversion.recorded.v1 the reports use."""

    model_config = ConfigDict(extra="ignore")

    conversion_id: uuid.UUID
    kind: str
    community_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    activity_id: uuid.UUID | None = None
    invite_channel: str | None = None
    value: float | None = None
    occurred_at: datetime


@conversions.handles("hearth.metrics.conversion.recorded.v1", payload=ConversionRecordedFact)
async def on_conversion(
    session: AsyncSession, envelope: Envelope, data: ConversionRecordedFact
) -> None:
    """Keep a conversion attributed to an activity (once per conversion id)."""
    if data.activity_id is None:
        return
    if await session.get(ActivityConversion, data.conversion_id) is not None:
        return
    session.add(
        ActivityConversion(
            conversion_id=data.conversion_id,
            activity_id=data.activity_id,
            community_id=data.community_id,
            user_id=data.user_id,
            kind=data.kind[:60],
            invite_channel=data.invite_channel[:60] if data.invite_channel else None,
            value=data.value or 0.0,
            occurred_at=data.occurred_at,
        )
    )
