"""Members' subscription to moderation's sanctions (payloads parsed by members' own models)."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_members.accounts.service import platform_staff
from hearth_members.audit.service import SYSTEM_ACTOR, audit
from hearth_members.communities.models import Community, CommunityRole
from hearth_members.membership.guards import active_membership
from hearth_members.membership.models import Membership
from hearth_members.membership.sanctions import end_membership, mute_member
from hearth_members.notifications import notify
from servicekit.consumer import EventConsumer
from servicekit.deps import UnitOfWork, handler_uow
from servicekit.events import Envelope

log = logging.getLogger(__name__)


sanctions = EventConsumer("members__sanctions")


class SanctionAppliedFact(BaseModel):
    """What members reads from hearth.moderation.sanction.applied.v1."""

    model_config = ConfigDict(extra="ignore")

    sanction_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    level: str
    reason: str = ""
    evidence_ref: str = ""
    muted_until: datetime | None = None


@sanctions.handles("hearth.moderation.sanction.applied.v1")
async def on_sanction_applied(session: AsyncSession, envelope: Envelope) -> None:
    """Apply moderation's sanction: warn (notice), mute (muted_until), or remove (with evidence)."""
    data: SanctionAppliedFact = envelope.payload(SanctionAppliedFact)
    uow = handler_uow(session)
    community = await session.get(Community, data.community_id)
    membership = await active_membership(uow, data.community_id, data.user_id)
    if community is None or membership is None:
        log.info("sanction %s: no active membership to apply it to", data.sanction_id)
        return  # the person already left or was removed: nothing to change
    evidence = data.evidence_ref or f"moderation:sanction:{data.sanction_id}"
    if data.level == "mute" and data.muted_until is not None:
        await mute_member(
            uow,
            community,
            membership,
            until=data.muted_until,
            reason=data.reason,
            sanction_id=data.sanction_id,
        )
    elif data.level == "removal" and (
        membership.role == CommunityRole.owner or community.owner_id == data.user_id
    ):
        await _withhold_owner_removal(uow, community, membership, data, evidence)
    elif data.level == "removal":
        await end_membership(
            uow,
            community,
            membership,
            actor_id=None,
            reason=data.reason or "removed by moderation",
            evidence_ref=evidence,
            cause="sanction",
        )
    else:
        await notify(
            uow=uow,
            user_id=data.user_id,
            kind="sanction.warning",
            title=f"A warning in {community.name}",
            body=data.reason,
            community_id=community.id,
            data={"evidence_ref": evidence},
        )


async def _withhold_owner_removal(
    uow: UnitOfWork,
    community: Community,
    owner: Membership,
    data: SanctionAppliedFact,
    evidence: str,
) -> None:
    """A removal sanction on the owner: keep them (one owner, always), tell who can act."""
    # An event cannot be refused, and removing the owner would leave the community without
    # one. Platform staff can transfer ownership and then remove them; the owner can hand over.
    staff = await platform_staff(uow=uow)
    log.warning(
        "sanction %s: removal of the owner of community %s withheld; %d staff notified",
        data.sanction_id,
        community.id,
        len(staff),
    )
    details = {
        "sanction_id": str(data.sanction_id),
        "evidence_ref": evidence,
        "staff_notified": len(staff),
    }
    audit(
        uow=uow,
        actor_id=SYSTEM_ACTOR,
        action="member.removal_withheld.owner",
        target_type="user",
        target_id=owner.user_id,
        community_id=community.id,
        reason=data.reason,
        details=details,
    )
    for user_id in staff:
        await notify(
            uow=uow,
            user_id=user_id,
            kind="sanction.owner_removal_withheld",
            title=f"Moderation's removal of the owner of {community.name} needs you",
            body=(
                f"Moderation applied a removal sanction to the owner ({data.reason}). A community "
                "always has one owner, so members did not remove them: transfer ownership, "
                "then remove them if the sanction stands."
            ),
            community_id=community.id,
            data={"user_id": str(owner.user_id), **details},
        )
    await notify(
        uow=uow,
        user_id=owner.user_id,
        kind="sanction.removal_withheld",
        title=f"Moderation decided to remove you from {community.name}",
        body=(
            f"{data.reason} You own this community, so you stay until ownership is handed "
            "over; platform staff have been told."
        ),
        community_id=community.id,
        data={"evidence_ref": evidence, "sanction_id": str(data.sanction_id)},
    )
