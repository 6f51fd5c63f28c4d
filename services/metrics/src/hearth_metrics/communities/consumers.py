"""The `metrics__memberships` consumer: members' snapshots feed metrics' read models.

Parsed with metrics' own tolerant models (only the fields metrics needs, extra ignored). A
snapshot replaces the row only when newer (servicekit.readmodel), so order does not matter.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_metrics.communities import service
from servicekit.consumer import EventConsumer
from servicekit.deps import handler_uow
from servicekit.events import Envelope

memberships = EventConsumer("metrics__memberships")


class MembershipSnapshotV1(BaseModel):
    """What metrics reads from hearth.members.membership.snapshot.v1."""

    model_config = ConfigDict(extra="ignore")

    community_id: uuid.UUID
    user_id: uuid.UUID
    membership_id: uuid.UUID
    role: str
    status: str
    tier: str | None = None
    joined_at: datetime
    version: int


class CommunitySnapshotV1(BaseModel):
    """What metrics reads from hearth.members.community.snapshot.v1."""

    model_config = ConfigDict(extra="ignore")

    community_id: uuid.UUID
    name: str
    kind: str
    visibility: str
    owner_id: uuid.UUID
    archived: bool
    created_at: datetime
    version: int


@memberships.handles("hearth.members.membership.snapshot.v1", payload=MembershipSnapshotV1)
async def on_membership_snapshot(
    session: AsyncSession, envelope: Envelope, data: MembershipSnapshotV1
) -> None:
    """Take a membership's whole state when it is newer than the one held."""
    await service.apply_membership(uow=handler_uow(session), values=data.model_dump())


@memberships.handles("hearth.members.community.snapshot.v1", payload=CommunitySnapshotV1)
async def on_community_snapshot(
    session: AsyncSession, envelope: Envelope, data: CommunitySnapshotV1
) -> None:
    """Take a community's whole state when it is newer than the one held."""
    await service.apply_community(uow=handler_uow(session), values=data.model_dump())
