"""What events consumes: members' facts, kept as a local read model of memberships.

Payloads are parsed with this service's own tolerant models (only the fields it needs; extra
fields are ignored), never with members' classes. The envelope's time orders the facts.
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


class MemberJoinedData(BaseModel):
    """The fields of members' member.joined.v1 this service needs (others are ignored)."""

    community_id: uuid.UUID
    user_id: uuid.UUID
    membership_id: uuid.UUID | None = None
    role: str = "member"
    joined_at: datetime


class MemberRefData(BaseModel):
    """The fields of members' left/removed/banned/restored.v1 this service needs."""

    community_id: uuid.UUID
    user_id: uuid.UUID


class RoleChangedData(BaseModel):
    """The fields of members' member.role_changed.v1 this service needs."""

    community_id: uuid.UUID
    user_id: uuid.UUID
    new_role: str


@memberships.handles("hearth.members.member.joined.v1")
async def on_member_joined(session: AsyncSession, envelope: Envelope) -> None:
    """An active membership: the person may now see and register for the community's activities."""
    data: MemberJoinedData = envelope.payload(MemberJoinedData)
    await service.apply_membership(
        session=session,
        community_id=data.community_id,
        user_id=data.user_id,
        as_of=envelope.time,
        changes={
            "membership_id": data.membership_id,
            "role": data.role,
            "status": service.ACTIVE,
            "joined_at": data.joined_at,
        },
    )


# Members' statuses after each exit. A lifted ban (`restored`) leaves the person outside until
# they join again, as `left`; a reinstated removed member arrives as a fresh `joined`.
_EXIT_STATUS = {
    "hearth.members.member.left.v1": "left",
    "hearth.members.member.removed.v1": "removed",
    "hearth.members.member.banned.v1": "banned",
    "hearth.members.member.restored.v1": "left",
}


@memberships.handles("hearth.members.member.left.v1")
@memberships.handles("hearth.members.member.removed.v1")
@memberships.handles("hearth.members.member.banned.v1")
@memberships.handles("hearth.members.member.restored.v1")
async def on_member_exit(session: AsyncSession, envelope: Envelope) -> None:
    """The person is no longer (or, after a lifted ban, not yet) a member: no new registrations."""
    data: MemberRefData = envelope.payload(MemberRefData)
    await service.apply_membership(
        session=session,
        community_id=data.community_id,
        user_id=data.user_id,
        as_of=envelope.time,
        changes={"status": _EXIT_STATUS[envelope.type]},
    )


@memberships.handles("hearth.members.member.role_changed.v1")
async def on_role_changed(session: AsyncSession, envelope: Envelope) -> None:
    """Take a member's new community role (ownership transfers send one per person)."""
    data: RoleChangedData = envelope.payload(RoleChangedData)
    await service.apply_membership(
        session=session,
        community_id=data.community_id,
        user_id=data.user_id,
        as_of=envelope.time,
        changes={"role": data.new_role},
    )
