"""What events consumes: members' membership snapshots, kept as a local read model.

Payloads are parsed with this service's own tolerant models (only the fields it needs; extra
fields are ignored), never with members' classes. Members publishes a membership's whole state
with a version that only grows; a snapshot replaces the row when it is newer
(servicekit.readmodel), so delivery order and redelivery do not matter.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_events import service
from servicekit.consumer import EventConsumer
from servicekit.events import Envelope

memberships = EventConsumer("events__memberships")


class MembershipSnapshotData(BaseModel):
    """The fields of members' membership.snapshot.v1 this service needs (others are ignored)."""

    community_id: uuid.UUID
    user_id: uuid.UUID
    membership_id: uuid.UUID
    role: str
    status: str
    joined_at: datetime
    muted_until: datetime | None = None
    tier: str | None = None
    # Tier privileges (members' vocabulary); `priority_registration` opens registration early.
    privileges: list[str] = []
    version: int


@memberships.handles("hearth.members.membership.snapshot.v1", payload=MembershipSnapshotData)
async def on_membership_snapshot(
    session: AsyncSession, envelope: Envelope, data: MembershipSnapshotData
) -> None:
    """A membership's whole state: who may see and register for the community's activities."""
    await service.apply_membership(session=session, values=data.model_dump())
