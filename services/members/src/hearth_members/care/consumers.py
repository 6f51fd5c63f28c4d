"""The `members__care` consumer: metrics' quiet and active facts drive care journeys."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_members.care import service
from servicekit.consumer import EventConsumer
from servicekit.deps import handler_uow
from servicekit.events import Envelope

care = EventConsumer("members__care")


class InactiveFact(BaseModel):
    """metrics.member.inactive.v1, the fields care needs."""

    community_id: uuid.UUID
    user_id: uuid.UUID
    kind: str = "inactive"


class ActiveFact(BaseModel):
    """metrics.member.active.v1, the fields care needs."""

    community_id: uuid.UUID
    user_id: uuid.UUID
    active_at: datetime


@care.handles("hearth.metrics.member.inactive.v1")
async def member_inactive(session: AsyncSession, envelope: Envelope) -> None:
    """Start a care journey (first nudge) unless one is already open."""
    fact: InactiveFact = envelope.payload(InactiveFact)
    trigger = fact.kind if fact.kind in ("inactive", "quiet_top_contributor") else "inactive"
    await service.start_journey(
        uow=handler_uow(session),
        community_id=fact.community_id,
        user_id=fact.user_id,
        trigger=trigger,
        trigger_event_id=envelope.id,
    )


@care.handles("hearth.metrics.member.active.v1")
async def member_active(session: AsyncSession, envelope: Envelope) -> None:
    """Record a win-back when a nudged member is active again within the window."""
    fact: ActiveFact = envelope.payload(ActiveFact)
    await service.record_activity(
        uow=handler_uow(session),
        community_id=fact.community_id,
        user_id=fact.user_id,
        active_at=fact.active_at,
    )
