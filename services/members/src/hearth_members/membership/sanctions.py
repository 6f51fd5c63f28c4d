"""Ending a membership: removal, ban, restore, mute."""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError

from hearth_members.audit.service import SYSTEM_ACTOR, audit
from hearth_members.communities.models import Community, CommunityRole
from hearth_members.communities.service import acting_role, ensure_not_archived
from hearth_members.membership.events import (
    MemberBanned,
    MemberMuted,
    MemberRemoved,
    MemberRestored,
)
from hearth_members.membership.guards import member_to_act_on, membership_of, refuse_owner
from hearth_members.membership.joining import admit
from hearth_members.membership.models import (
    Membership,
    MembershipStatus,
    MuteRequest,
    RemovalRequest,
)
from hearth_members.notifications import notify
from hearth_members.permissions import Action, check_over
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.problems import conflict


async def end_membership(
    uow: UnitOfWork,
    community: Community,
    membership: Membership,
    *,
    actor_id: uuid.UUID | None,
    reason: str,
    evidence_ref: str | None,
    cause: str,
) -> None:
    """Remove a member (status, event, notice to them, audit) inside the caller's transaction."""
    now = utcnow()
    membership.status = MembershipStatus.removed
    membership.ended_at = now
    membership.end_reason = reason
    membership.ended_by = actor_id
    membership.evidence_ref = evidence_ref
    membership.removal_due_at = None
    uow.session.add(membership)
    await uow.record(
        MemberRemoved(
            community_id=community.id,
            user_id=membership.user_id,
            membership_id=membership.id,
            removed_by=actor_id,
            reason=reason,
            evidence_ref=evidence_ref,
            cause=cause,
            removed_at=now,
        ),
        subject=str(community.id),
    )
    await notify(
        uow=uow,
        user_id=membership.user_id,
        kind="member.removed",
        title=f"You were removed from {community.name}",
        body=reason,
        community_id=community.id,
        data={"cause": cause, "evidence_ref": evidence_ref} if evidence_ref else {"cause": cause},
    )
    audit(
        uow=uow,
        actor_id=actor_id or SYSTEM_ACTOR,
        action=f"member.removed.{cause}",
        target_type="user",
        target_id=membership.user_id,
        community_id=community.id,
        reason=reason,
        details={"evidence_ref": evidence_ref} if evidence_ref else {},
    )


async def remove_member(
    *,
    uow: UnitOfWork,
    community_id: uuid.UUID,
    user_id: uuid.UUID,
    data: RemovalRequest,
    actor: Principal,
) -> Membership:
    """Remove a member ranked below the actor, with a reason and a notice to them."""
    community, role = await acting_role(
        uow=uow, community_id=community_id, actor=actor, action=Action.remove_member
    )
    target = await member_to_act_on(uow, community_id, user_id)
    check_over(actor, role, Action.remove_member, target.role)
    refuse_owner(community, target)  # only staff outrank an owner; they must transfer first
    await end_membership(
        uow,
        community,
        target,
        actor_id=actor.subject,
        reason=data.reason,
        evidence_ref=data.evidence_ref,
        cause="manual",
    )
    await uow.commit()
    return target


async def ban_member(
    *,
    uow: UnitOfWork,
    community_id: uuid.UUID,
    user_id: uuid.UUID,
    data: RemovalRequest,
    actor: Principal,
) -> Membership:
    """Ban a person (member or not) from a community: they cannot rejoin, not even by invite."""
    community, role = await acting_role(
        uow=uow, community_id=community_id, actor=actor, action=Action.ban_member
    )
    membership = await membership_of(uow, community_id, user_id)
    if membership is not None and membership.status == MembershipStatus.banned:
        return membership
    if membership is not None and membership.status == MembershipStatus.active:
        check_over(actor, role, Action.ban_member, membership.role)
        refuse_owner(community, membership)
    membership = await ban_membership(
        uow,
        community,
        membership,
        user_id,
        actor_id=actor.subject,
        reason=data.reason,
        evidence_ref=data.evidence_ref,
    )
    await uow.commit()
    return membership


async def restore_member(
    *, uow: UnitOfWork, community_id: uuid.UUID, user_id: uuid.UUID, actor: Principal
) -> Membership:
    """Undo the community's exit decision: lift a ban, or reinstate a removed member."""
    community, _ = await acting_role(
        uow=uow, community_id=community_id, actor=actor, action=Action.ban_member
    )
    membership = await membership_of(uow, community_id, user_id)
    if membership is None or membership.status not in (
        MembershipStatus.banned,
        MembershipStatus.removed,
    ):
        raise conflict("not-restorable", "only a banned or removed person can be restored")
    previous = membership.status
    if previous == MembershipStatus.banned:
        # A ban is on a person, who may never have been a member: lifting it lets them in
        # again by the join policy, it does not make them a member.
        membership.status = MembershipStatus.left
        uow.session.add(membership)
        await uow.record(
            MemberRestored(
                community_id=community_id,
                user_id=user_id,
                restored_by=actor.subject,
                restored_at=utcnow(),
            ),
            subject=str(community_id),
        )
        title = f"Your ban from {community.name} was lifted"
        body = "You may join again."
    else:
        # A removal ended a membership: restoring reinstates it (as a member; roles are
        # granted again by hand), announced as a join so read models see it active again.
        ensure_not_archived(community)
        await admit(uow, community, user_id, welcome=False)
        title = f"You were reinstated in {community.name}"
        body = "Your removal was reversed; you are a member again."
    await notify(
        uow=uow,
        user_id=user_id,
        kind="member.restored",
        title=title,
        body=body,
        community_id=community_id,
        data={"from": previous.value},
    )
    audit(
        uow=uow,
        actor_id=actor.subject,
        action="member.restored",
        target_type="user",
        target_id=user_id,
        community_id=community_id,
        details={"from": previous.value},
    )
    await uow.commit()
    return membership


async def mute(
    *,
    uow: UnitOfWork,
    community_id: uuid.UUID,
    user_id: uuid.UUID,
    data: MuteRequest,
    actor: Principal,
) -> Membership:
    """Mute a member ranked below the actor until a time (null or past: lift the mute)."""
    community, role = await acting_role(
        uow=uow, community_id=community_id, actor=actor, action=Action.mute_member
    )
    target = await member_to_act_on(uow, community_id, user_id)
    check_over(actor, role, Action.mute_member, target.role)
    now = utcnow()
    until = data.muted_until if data.muted_until and data.muted_until > now else now
    await mute_member(uow, community, target, until=until, reason=data.reason, sanction_id=None)
    audit(
        uow=uow,
        actor_id=actor.subject,
        action="member.muted" if until > now else "member.unmuted",
        target_type="user",
        target_id=user_id,
        community_id=community_id,
        reason=data.reason,
        details={"muted_until": until.isoformat()},
    )
    await uow.commit()
    return target


async def mute_member(
    uow: UnitOfWork,
    community: Community,
    membership: Membership,
    *,
    until: object,
    reason: str,
    sanction_id: uuid.UUID | None,
) -> None:
    """Record a mute on the membership, publish it, tell the member (caller commits)."""
    membership.muted_until = until  # type: ignore[assignment]
    uow.session.add(membership)
    await uow.record(
        MemberMuted(
            community_id=community.id,
            user_id=membership.user_id,
            muted_until=until,  # type: ignore[arg-type]
            reason=reason,
            sanction_id=sanction_id,
            muted_at=utcnow(),
        ),
        subject=str(community.id),
    )
    await notify(
        uow=uow,
        user_id=membership.user_id,
        kind="sanction.mute",
        title=f"You are muted in {community.name}",
        body=f"{reason} (until {until:%Y-%m-%d %H:%M} UTC)",  # type: ignore[str-format]
        community_id=community.id,
        data={"muted_until": str(until)},
    )


async def ban_membership(
    uow: UnitOfWork,
    community: Community,
    membership: Membership | None,
    user_id: uuid.UUID,
    *,
    actor_id: uuid.UUID | None,
    reason: str,
    evidence_ref: str | None,
) -> Membership:
    """Ban a person (status, event, notice, audit) inside the caller's transaction."""
    if membership is None:
        membership = Membership(community_id=community.id, user_id=user_id)
    now = utcnow()
    membership.status = MembershipStatus.banned
    membership.role = CommunityRole.member
    membership.ended_at = now
    membership.end_reason = reason
    membership.ended_by = actor_id
    membership.evidence_ref = evidence_ref
    uow.session.add(membership)
    try:
        await uow.session.flush()
    except IntegrityError as exc:  # the person joined (or was banned) at the same moment
        await uow.session.rollback()
        raise conflict("membership-race", "the membership changed meanwhile; retry") from exc
    await uow.record(
        MemberBanned(
            community_id=community.id,
            user_id=user_id,
            banned_by=actor_id or SYSTEM_ACTOR,
            reason=reason,
            banned_at=now,
        ),
        subject=str(community.id),
    )
    await notify(
        uow=uow,
        user_id=user_id,
        kind="member.banned",
        title=f"You were banned from {community.name}",
        body=reason,
        community_id=community.id,
        data={"evidence_ref": evidence_ref} if evidence_ref else {},
    )
    audit(
        uow=uow,
        actor_id=actor_id or SYSTEM_ACTOR,
        action="member.banned",
        target_type="user",
        target_id=user_id,
        community_id=community.id,
        reason=reason,
        details={"evidence_ref": evidence_ref} if evidence_ref else {},
    )
    return membership


async def unmute_member(
    uow: UnitOfWork,
    community: Community,
    membership: Membership,
    *,
    until: object,
    reason: str,
    sanction_id: uuid.UUID | None,
) -> None:
    """End (or shorten to `until`) a mute, publish it, tell the member (caller commits)."""
    now = utcnow()
    ends = until if until is not None and until > now else None  # type: ignore[operator]
    membership.muted_until = ends  # type: ignore[assignment]
    uow.session.add(membership)
    await uow.record(
        MemberMuted(
            community_id=community.id,
            user_id=membership.user_id,
            muted_until=ends or now,  # type: ignore[arg-type]
            reason=reason,
            sanction_id=sanction_id,
            muted_at=now,
        ),
        subject=str(community.id),
    )
    await notify(
        uow=uow,
        user_id=membership.user_id,
        kind="sanction.unmuted",
        title=(
            f"Your mute in {community.name} was shortened"
            if ends
            else f"You may post in {community.name} again"
        ),
        body=f"{reason} (until {ends:%Y-%m-%d %H:%M} UTC)" if ends else reason,  # type: ignore[str-format]
        community_id=community.id,
        data={"muted_until": str(ends) if ends else None, "sanction_id": str(sanction_id)},
    )
