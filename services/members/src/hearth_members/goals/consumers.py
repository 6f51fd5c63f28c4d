"""Members' subscription to metrics' community measurements, for goals (wired in app.py)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_members.goals.service import record_measurement
from servicekit.consumer import EventConsumer
from servicekit.deps import handler_uow
from servicekit.events import Envelope

measurements = EventConsumer("members__measurements")


class CommunityMeasuredFact(BaseModel):
    """What members reads from hearth.metrics.community.measured.v1 (any metric name is kept)."""

    model_config = ConfigDict(extra="ignore")

    community_id: uuid.UUID
    metric: str
    value: float
    measured_at: datetime


@measurements.handles("hearth.metrics.community.measured.v1")
async def on_community_measured(session: AsyncSession, envelope: Envelope) -> None:
    """Keep the newest measurement per community metric: goals read their progress from it."""
    data: CommunityMeasuredFact = envelope.payload(CommunityMeasuredFact)
    await record_measurement(
        uow=handler_uow(session),
        community_id=data.community_id,
        metric=data.metric,
        value=data.value,
        measured_at=data.measured_at,
    )
