"""The `members__tiers` consumer: metrics' activity facts feed the tier read model."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_members.communities.models import Community
from hearth_members.tiers import service
from servicekit.consumer import EventConsumer
from servicekit.deps import handler_uow
from servicekit.events import Envelope

activity = EventConsumer("members__tiers")


class ActiveFact(BaseModel):
    """metrics.member.active.v1, the fields tiers need."""

    community_id: uuid.UUID
    user_id: uuid.UUID
    active_at: datetime


class InactiveFact(BaseModel):
    """metrics.member.inactive.v1, the fields tiers need."""

    community_id: uuid.UUID
    user_id: uuid.UUID
    detected_at: datetime


@activity.handles("hearth.metrics.member.active.v1")
async def member_active(session: AsyncSession, envelope: Envelope) -> None:
    """Record the activity and recompute the member's tier."""
    fact: ActiveFact = envelope.payload(ActiveFact)
    if await session.get(Community, fact.community_id) is None:
        return
    await service.record_activity(
        uow=handler_uow(session),
        community_id=fact.community_id,
        user_id=fact.user_id,
        active_at=fact.active_at,
    )


@activity.handles("hearth.metrics.member.inactive.v1")
async def member_inactive(session: AsyncSession, envelope: Envelope) -> None:
    """Record that the member went quiet and recompute their tier."""
    fact: InactiveFact = envelope.payload(InactiveFact)
    if await session.get(Community, fact.community_id) is None:
        return
    await service.record_activity(
        uow=handler_uow(session),
        community_id=fact.community_id,
        user_id=fact.user_id,
        inactive_since=fact.detected_at,
        inactive_event_id=envelope.id,
    )
