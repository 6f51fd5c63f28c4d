"""Content's subscriptions: members' facts feed the read models; moderation's verdicts apply.

Payloads are parsed with content's own tolerant models (only the fields content needs, extra
fields ignored), never with the producing service's classes. The envelope's time orders members'
facts (see `service.apply_membership`). `member.pseudonymised.v1` needs nothing here: content
copies no profile data from members, only user ids, which outlive a pseudonymisation.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_content import service
from hearth_content.models import CommunityRole, MembershipStatus
from servicekit.consumer import EventConsumer
from servicekit.deps import handler_uow
from servicekit.events import Envelope

memberships = EventConsumer("content__memberships")
screening = EventConsumer("content__screening")


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CommunityCreatedV1(_Tolerant):
    """What content reads from hearth.members.community.created.v1."""

    community_id: uuid.UUID
    name: str
    kind: str
    visibility: str = "public"
    owner_id: uuid.UUID
    created_at: datetime


class MemberJoinedV1(_Tolerant):
    """What content reads from hearth.members.member.joined.v1."""

    community_id: uuid.UUID
    user_id: uuid.UUID
    membership_id: uuid.UUID | None = None
    role: str = CommunityRole.member
    joined_at: datetime


class CommunityUpdatedV1(_Tolerant):
    """What content reads from hearth.members.community.updated.v1."""

    community_id: uuid.UUID
    name: str
    kind: str
    visibility: str


class CommunityIdV1(_Tolerant):
    """What content reads from hearth.members.community.archived.v1 / .restored.v1."""

    community_id: uuid.UUID


class MemberRefV1(_Tolerant):
    """What content reads from members' left/removed/banned/restored events."""

    community_id: uuid.UUID
    user_id: uuid.UUID


class MemberMutedV1(_Tolerant):
    """What content reads from hearth.members.member.muted.v1 (a lifted mute carries `now`)."""

    community_id: uuid.UUID
    user_id: uuid.UUID
    muted_until: datetime


class RoleChangedV1(_Tolerant):
    """What content reads from hearth.members.member.role_changed.v1."""

    community_id: uuid.UUID
    user_id: uuid.UUID
    new_role: str


class ScreeningCompletedV1(_Tolerant):
    """What content reads from hearth.moderation.screening.completed.v1."""

    screening_id: uuid.UUID
    target_type: str
    target_id: uuid.UUID
    decision: str
    reasons: list[str] = []


@memberships.handles("hearth.members.community.created.v1")
async def on_community_created(session: AsyncSession, envelope: Envelope) -> None:
    """Record a new community in the read model."""
    data: CommunityCreatedV1 = envelope.payload(CommunityCreatedV1)
    await service.apply_community(
        uow=handler_uow(session),
        community_id=data.community_id,
        as_of=envelope.time,
        changes={
            "name": data.name,
            "kind": data.kind,
            "visibility": data.visibility,
            "owner_id": data.owner_id,
            "created_at": data.created_at,
        },
    )


@memberships.handles("hearth.members.member.joined.v1")
async def on_member_joined(session: AsyncSession, envelope: Envelope) -> None:
    """Record an active membership in the read model (a rejoin reactivates it)."""
    data: MemberJoinedV1 = envelope.payload(MemberJoinedV1)
    await service.apply_membership(
        uow=handler_uow(session),
        community_id=data.community_id,
        user_id=data.user_id,
        as_of=envelope.time,
        changes={
            "membership_id": data.membership_id,
            "role": data.role,
            "status": MembershipStatus.active,
            "joined_at": data.joined_at,
        },
    )


@memberships.handles("hearth.members.community.updated.v1")
async def on_community_updated(session: AsyncSession, envelope: Envelope) -> None:
    """Take a community's new name, kind and visibility."""
    data: CommunityUpdatedV1 = envelope.payload(CommunityUpdatedV1)
    await service.apply_community(
        uow=handler_uow(session),
        community_id=data.community_id,
        as_of=envelope.time,
        changes={"name": data.name, "kind": data.kind, "visibility": data.visibility},
    )


@memberships.handles("hearth.members.community.archived.v1")
async def on_community_archived(session: AsyncSession, envelope: Envelope) -> None:
    """An archived community takes no new posts."""
    await _set_archived(session, envelope, archived=True)


@memberships.handles("hearth.members.community.restored.v1")
async def on_community_restored(session: AsyncSession, envelope: Envelope) -> None:
    """A restored community takes posts again."""
    await _set_archived(session, envelope, archived=False)


async def _set_archived(session: AsyncSession, envelope: Envelope, *, archived: bool) -> None:
    data: CommunityIdV1 = envelope.payload(CommunityIdV1)
    await service.apply_community(
        uow=handler_uow(session),
        community_id=data.community_id,
        as_of=envelope.time,
        changes={"archived": archived},
    )


# Exits: members sets these statuses on the membership; a ban lifted (`restored`) leaves the
# person outside the community until they join again, as `left`. (A removed member who is
# reinstated arrives as a fresh `joined`.)
_EXIT_STATUS = {
    "hearth.members.member.left.v1": MembershipStatus.left,
    "hearth.members.member.removed.v1": MembershipStatus.removed,
    "hearth.members.member.banned.v1": MembershipStatus.banned,
    "hearth.members.member.restored.v1": MembershipStatus.left,
}


@memberships.handles("hearth.members.member.left.v1")
@memberships.handles("hearth.members.member.removed.v1")
@memberships.handles("hearth.members.member.banned.v1")
@memberships.handles("hearth.members.member.restored.v1")
async def on_member_exit(session: AsyncSession, envelope: Envelope) -> None:
    """Record that a person is no longer (or, after a ban is lifted, not yet) a member."""
    data: MemberRefV1 = envelope.payload(MemberRefV1)
    await service.apply_membership(
        uow=handler_uow(session),
        community_id=data.community_id,
        user_id=data.user_id,
        as_of=envelope.time,
        changes={"status": _EXIT_STATUS[envelope.type]},
    )


@memberships.handles("hearth.members.member.muted.v1")
async def on_member_muted(session: AsyncSession, envelope: Envelope) -> None:
    """Keep the member from posting until `muted_until` (a lift sets it to the lift's time)."""
    data: MemberMutedV1 = envelope.payload(MemberMutedV1)
    await service.apply_membership(
        uow=handler_uow(session),
        community_id=data.community_id,
        user_id=data.user_id,
        as_of=envelope.time,
        changes={"muted_until": data.muted_until},
    )


@memberships.handles("hearth.members.member.role_changed.v1")
async def on_role_changed(session: AsyncSession, envelope: Envelope) -> None:
    """Take a member's new community role (ownership transfers send one per person)."""
    data: RoleChangedV1 = envelope.payload(RoleChangedV1)
    await service.apply_membership(
        uow=handler_uow(session),
        community_id=data.community_id,
        user_id=data.user_id,
        as_of=envelope.time,
        changes={"role": data.new_role},
    )


@screening.handles("hearth.moderation.screening.completed.v1")
async def on_screening_completed(session: AsyncSession, envelope: Envelope) -> None:
    """Publish or hold the screened post."""
    data: ScreeningCompletedV1 = envelope.payload(ScreeningCompletedV1)
    if data.target_type != "post":
        return  # moderation screens other things too; only posts are content's
    await service.apply_screening(
        uow=handler_uow(session),
        post_id=data.target_id,
        screening_id=data.screening_id,
        decision=data.decision,
        reasons=data.reasons,
    )
