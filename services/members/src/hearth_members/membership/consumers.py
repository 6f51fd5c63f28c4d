"""Members' subscription to moderation's sanctions (payloads parsed by members' own models).

`sanction.applied.v2` (warning, mute, removal, ban, with the notice the member is told) is what
moderation publishes; v1 is still read for events published before it. `sanction.expired` and
`sanction.lifted` give back what a sanction took: the mute ends, the membership is reinstated.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_members.accounts.service import platform_staff
from hearth_members.audit.service import SYSTEM_ACTOR, audit
from hearth_members.communities.models import Community, CommunityRole
from hearth_members.membership.guards import active_membership, membership_of
from hearth_members.membership.joining import admit
from hearth_members.membership.models import Membership, MembershipStatus
from hearth_members.membership.sanctions import (
    ban_membership,
    end_membership,
    mute_member,
    unmute_member,
)
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
    actor_id: uuid.UUID | None = None
    notice: str = ""  # v2: what, why (the item quoted), until when, how to appeal


@sanctions.handles("hearth.moderation.sanction.applied.v1")
@sanctions.handles("hearth.moderation.sanction.applied.v2")
async def on_sanction_applied(session: AsyncSession, envelope: Envelope) -> None:
    """Apply moderation's sanction: warn (notice), mute, remove or ban (with evidence)."""
    data: SanctionAppliedFact = envelope.payload(SanctionAppliedFact)
    uow = handler_uow(session)
    community = await session.get(Community, data.community_id)
    told = (data.notice or data.reason)[:1000]
    if data.level == "ban" and community is not None:
        await _ban(uow, community, data, told)
        return
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
            reason=told,
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
            actor_id=data.actor_id,
            reason=told or "removed by moderation",
            evidence_ref=evidence,
            cause="sanction",
        )
    else:
        await notify(
            uow=uow,
            user_id=data.user_id,
            kind="sanction.warning",
            title=f"A warning in {community.name}",
            body=told,
            community_id=community.id,
            data={"evidence_ref": evidence, "sanction_id": str(data.sanction_id)},
        )


async def _ban(uow: UnitOfWork, community: Community, data: SanctionAppliedFact, told: str) -> None:
    """A ban sanction: end the membership (if any) and refuse rejoining; the owner is kept."""
    evidence = data.evidence_ref or f"moderation:sanction:{data.sanction_id}"
    membership = await membership_of(uow, data.community_id, data.user_id)
    if membership is not None and membership.status == MembershipStatus.banned:
        return  # banned already (a redelivery or a second ban)
    if (
        membership is not None
        and membership.status == MembershipStatus.active
        and (membership.role == CommunityRole.owner or community.owner_id == data.user_id)
    ):
        await _withhold_owner_removal(uow, community, membership, data, evidence)
        return
    await ban_membership(
        uow,
        community,
        membership,
        data.user_id,
        actor_id=data.actor_id,
        reason=told,
        evidence_ref=evidence,
    )


class SanctionEndedFact(BaseModel):
    """What members reads from moderation's sanction.expired.v1 and sanction.lifted.v1."""

    model_config = ConfigDict(extra="ignore")

    sanction_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    level: str
    outcome: str = "expired"  # lifted.v1: lifted or reduced
    reason: str = ""
    muted_until: datetime | None = None  # a reduced mute's new end


@sanctions.handles("hearth.moderation.sanction.expired.v1", payload=SanctionEndedFact)
@sanctions.handles("hearth.moderation.sanction.lifted.v1", payload=SanctionEndedFact)
async def on_sanction_ended(
    session: AsyncSession, envelope: Envelope, data: SanctionEndedFact
) -> None:
    """Give back what the sanction took: end (or shorten) a mute, reinstate a membership."""
    uow = handler_uow(session)
    community = await session.get(Community, data.community_id)
    if community is None:
        return
    if data.level == "mute":
        membership = await active_membership(uow, data.community_id, data.user_id)
        if membership is None or membership.muted_until is None:
            return
        if data.outcome == "expired":
            reason = "Your mute ended."
        elif data.outcome == "reduced":
            reason = f"Your mute was shortened on appeal. {data.reason}".strip()
        else:
            reason = f"Your mute was lifted. {data.reason}".strip()
        await unmute_member(
            uow,
            community,
            membership,
            until=data.muted_until if data.outcome == "reduced" else None,
            reason=reason,
            sanction_id=data.sanction_id,
        )
    elif data.level in ("removal", "ban") and data.outcome != "expired":
        membership = await membership_of(uow, data.community_id, data.user_id)
        if membership is None or membership.status not in (
            MembershipStatus.removed,
            MembershipStatus.banned,
        ):
            return  # they rejoined meanwhile, or were never removed: nothing to give back
        previous = str(membership.status)
        if membership.status == MembershipStatus.banned:
            membership.status = MembershipStatus.left  # the ban is lifted; admit reinstates
        await admit(uow, community, data.user_id, welcome=False)
        await notify(
            uow=uow,
            user_id=data.user_id,
            kind="member.restored",
            title=f"You were reinstated in {community.name}",
            body=f"Moderation lifted the {data.level}. {data.reason}".strip(),
            community_id=community.id,
            data={"sanction_id": str(data.sanction_id), "from": previous},
        )
    elif data.level == "warning" and data.outcome != "expired":
        await notify(
            uow=uow,
            user_id=data.user_id,
            kind="sanction.warning_lifted",
            title=f"A warning in {community.name} was {data.outcome}",
            body=data.reason,
            community_id=community.id,
            data={"sanction_id": str(data.sanction_id)},
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


class ReportResolvedFact(BaseModel):
    """What members reads from hearth.moderation.report.resolved.v1."""

    model_config = ConfigDict(extra="ignore")

    report_id: uuid.UUID
    community_id: uuid.UUID
    item_type: str
    reporter_id: uuid.UUID
    outcome: str


@sanctions.handles("hearth.moderation.report.resolved.v1", payload=ReportResolvedFact)
async def on_report_resolved(
    session: AsyncSession, envelope: Envelope, data: ReportResolvedFact
) -> None:
    """Tell the reporter what became of their report."""
    community = await session.get(Community, data.community_id)
    name = community.name if community is not None else "the community"
    body = (
        "Moderators agreed with your report and acted on it. Thank you."
        if data.outcome == "upheld"
        else "Moderators looked at your report and found no breach of the rules."
    )
    await notify(
        uow=handler_uow(session),
        user_id=data.reporter_id,
        kind=f"report.{data.outcome}"[:60],
        title=f"Your report of a {data.item_type} in {name} was {data.outcome}",
        body=body,
        community_id=data.community_id,
        data={"report_id": str(data.report_id), "outcome": data.outcome},
    )


class DecisionFact(BaseModel):
    """What members reads from moderation's case.decided.v1 and appeal.decided.v1."""

    model_config = ConfigDict(extra="ignore")

    community_id: uuid.UUID
    user_id: uuid.UUID | None = None
    item_type: str = ""
    decision: str = ""  # case: uphold / dismiss
    outcome: str = ""  # appeal: upheld / reduced / lifted
    author_reason: str | None = None
    reason: str = ""
    appeal_id: uuid.UUID | None = None
    entry_id: uuid.UUID | None = None


@sanctions.handles("hearth.moderation.case.decided.v1", payload=DecisionFact)
@sanctions.handles("hearth.moderation.appeal.decided.v1", payload=DecisionFact)
async def on_decision(session: AsyncSession, envelope: Envelope, data: DecisionFact) -> None:
    """Tell the member concerned a moderator's decision and its reason (appeals' outcome)."""
    if data.user_id is None:
        return
    community = await session.get(Community, data.community_id)
    name = community.name if community is not None else "the community"
    if data.appeal_id is not None:
        kind = f"appeal.{data.outcome}"
        title = f"Your appeal in {name} was decided: {data.outcome}"
        body = data.reason
    elif data.author_reason:
        kind = f"moderation.{data.decision}"
        title = f"A moderator decided about your {data.item_type or 'item'} in {name}"
        body = data.author_reason
    else:
        return  # no reason for the author: nothing to tell
    await notify(
        uow=handler_uow(session),
        user_id=data.user_id,
        kind=kind[:60],
        title=title,
        body=body,
        community_id=data.community_id,
        data={
            k: str(v)
            for k, v in (("appeal_id", data.appeal_id), ("entry_id", data.entry_id))
            if v is not None
        },
    )
