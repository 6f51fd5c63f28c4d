"""Roles and ownership hand-over (single and bulk)."""

from __future__ import annotations

import uuid

from sqlalchemy import update
from sqlmodel import col, select

from hearth_members.audit.service import audit
from hearth_members.communities.models import Community, CommunityRole
from hearth_members.communities.service import acting_role
from hearth_members.goals.models import Goal
from hearth_members.membership.events import OwnershipTransferred, RoleChanged
from hearth_members.membership.guards import (
    active_membership,
    joined_event,
    member_to_act_on,
    membership_of,
    refuse_owner,
)
from hearth_members.membership.models import (
    Application,
    ApplicationStatus,
    BulkHandoverRequest,
    BulkHandoverResult,
    DepartingRole,
    Membership,
    MembershipStatus,
    OwnershipTransferRequest,
)
from hearth_members.membership.sanctions import end_membership
from hearth_members.notifications import notify
from hearth_members.permissions import Action, check_grant, check_over
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.problems import Problem, conflict, forbidden


async def change_role(
    *,
    uow: UnitOfWork,
    community_id: uuid.UUID,
    user_id: uuid.UUID,
    new_role: CommunityRole,
    actor: Principal,
) -> Membership:
    """Change a member's role: only for someone below the actor, only to a role below theirs."""
    community, role = await acting_role(
        uow=uow, community_id=community_id, actor=actor, action=Action.change_role
    )
    target = await member_to_act_on(uow, community_id, user_id)
    check_over(actor, role, Action.change_role, target.role)
    check_grant(actor, role, new_role)
    refuse_owner(community, target)  # demoting the owner would leave the community without one
    if target.role == new_role:
        return target
    old = target.role
    target.role = new_role
    uow.session.add(target)
    now = utcnow()
    await uow.record(
        RoleChanged(
            community_id=community_id,
            user_id=user_id,
            old_role=old,
            new_role=new_role,
            changed_by=actor.subject,
            changed_at=now,
        ),
        subject=str(community_id),
    )
    audit(
        uow=uow,
        actor_id=actor.subject,
        action="member.role_changed",
        target_type="user",
        target_id=user_id,
        community_id=community_id,
        details={"old_role": old, "new_role": new_role},
    )
    await uow.commit()
    return target


async def _hand_over(
    uow: UnitOfWork, community: Community, to_user: uuid.UUID, actor: Principal, reason: str
) -> None:
    """Make `to_user` the owner and the previous owner an admin, in the caller's transaction."""
    previous = community.owner_id
    if previous == to_user:
        return
    successor = await membership_of(uow, community.id, to_user)
    if successor is not None and successor.status == MembershipStatus.banned:
        raise conflict("successor-banned", "the successor is banned from this community")
    # None when the successor joins with this hand-over (their joined event says owner).
    successor_old_role = successor.role if successor is not None else None
    # An owner is never cleaned up: a pending notice on the successor ends with the hand-over.
    notice_withdrawn = successor is not None and successor.removal_due_at is not None
    # Demote first and flush: the one-owner unique index must never see two owners. Through
    # the ORM, never a Core UPDATE: every membership change bumps its version and writes its
    # snapshot (hearth_members.snapshots).
    owners = await uow.session.exec(
        select(Membership).where(
            Membership.community_id == community.id, Membership.role == CommunityRole.owner
        )
    )
    for owner in owners.all():
        owner.role = CommunityRole.admin
        uow.session.add(owner)
    await uow.session.flush()
    if successor is None:
        successor = Membership(community_id=community.id, user_id=to_user, role=CommunityRole.owner)
        uow.session.add(successor)
        await uow.record(joined_event(successor), subject=str(community.id))
    else:
        if successor.status != MembershipStatus.active:
            successor.status = MembershipStatus.active
            successor.joined_at = utcnow()
            uow.session.add(successor)
            await uow.session.flush()
            await uow.record(joined_event(successor), subject=str(community.id))
        successor.role = CommunityRole.owner
        successor.removal_due_at = successor.removal_notice_reason = None
        uow.session.add(successor)
    community.owner_id = to_user
    community.updated_at = utcnow()
    uow.session.add(community)
    # Role read models (content's) need only role_changed: say both changes explicitly.
    changes = [(previous, CommunityRole.owner)]
    if successor_old_role is not None:
        changes.append((to_user, successor_old_role))
    for user, old in changes:
        await uow.record(
            RoleChanged(
                community_id=community.id,
                user_id=user,
                old_role=old,
                new_role=CommunityRole.admin if user == previous else CommunityRole.owner,
                changed_by=actor.subject,
                changed_at=community.updated_at,
            ),
            subject=str(community.id),
        )
    await uow.record(
        OwnershipTransferred(
            community_id=community.id,
            from_user_id=previous,
            to_user_id=to_user,
            transferred_by=actor.subject,
            transferred_at=community.updated_at,
        ),
        subject=str(community.id),
    )
    audit(
        uow=uow,
        actor_id=actor.subject,
        action="community.ownership_transferred",
        target_type="community",
        target_id=community.id,
        community_id=community.id,
        reason=reason,
        details={
            "from": str(previous),
            "to": str(to_user),
            **({"cleanup_notice_withdrawn": True} if notice_withdrawn else {}),
        },
    )
    await notify(
        uow=uow,
        user_id=to_user,
        kind="ownership.received",
        title=f"You now own {community.name}",
        body=reason or "Ownership was handed over to you.",
        community_id=community.id,
    )


async def transfer_ownership(
    *, uow: UnitOfWork, community_id: uuid.UUID, data: OwnershipTransferRequest, actor: Principal
) -> Community:
    """Hand a community to another active member (owner or platform staff)."""
    community, _ = await acting_role(
        uow=uow, community_id=community_id, actor=actor, action=Action.transfer_ownership
    )
    if not actor.is_staff and await active_membership(uow, community_id, data.new_owner_id) is None:
        raise conflict("not-a-member", "the new owner must be an active member")
    await _hand_over(uow, community, data.new_owner_id, actor, data.reason)
    await uow.commit()
    await uow.session.refresh(community)
    return community


async def bulk_handover(
    *, uow: UnitOfWork, data: BulkHandoverRequest, actor: Principal
) -> BulkHandoverResult:
    """Everything a departing person owns (communities, pending reviews, goals) to a successor."""
    if not actor.is_staff:
        raise forbidden("bulk hand-over is for platform admins and operators")
    if data.from_user_id == data.to_user_id:
        raise Problem(422, "same-person", "Invalid request", "the successor must be someone else")
    owned = list(
        await uow.session.exec(select(Community).where(Community.owner_id == data.from_user_id))
    )
    for community in owned:
        await _hand_over(uow, community, data.to_user_id, actor, data.reason)
    reviews = list(
        (
            await uow.session.exec(
                select(Application.id).where(
                    Application.reviewer_id == data.from_user_id,
                    Application.status == ApplicationStatus.pending,
                )
            )
        ).all()
    )
    if reviews:
        await uow.session.exec(
            update(Application)
            .where(col(Application.id).in_(reviews))
            .values(reviewer_id=data.to_user_id)
            .execution_options(synchronize_session=False)
        )
    goals = list(
        (await uow.session.exec(select(Goal.id).where(Goal.owner_id == data.from_user_id))).all()
    )
    if goals:
        await uow.session.exec(
            update(Goal)
            .where(col(Goal.id).in_(goals))
            .values(owner_id=data.to_user_id)
            .execution_options(synchronize_session=False)
        )
    if data.departing != DepartingRole.keep:
        for community in owned:
            await _after_departure(uow, community, data, actor)
    result = BulkHandoverResult(
        communities=[c.id for c in owned],
        applications=reviews,
        goals=goals,
        departing=data.departing,
    )
    audit(
        uow=uow,
        actor_id=actor.subject,
        action="user.bulk_handover",
        target_type="user",
        target_id=data.from_user_id,
        reason=data.reason,
        details={"to": str(data.to_user_id), **result.model_dump(mode="json")},
    )
    await uow.commit()
    return result


async def _after_departure(
    uow: UnitOfWork, community: Community, data: BulkHandoverRequest, actor: Principal
) -> None:
    """Demote or remove the departing person in a community they just handed over."""
    membership = await active_membership(uow, community.id, data.from_user_id)
    if membership is None:
        return
    if data.departing == DepartingRole.remove:
        await end_membership(
            uow,
            community,
            membership,
            actor_id=actor.subject,
            reason=data.reason,
            evidence_ref=None,
            cause="manual",
        )
        return
    old = membership.role
    if old == CommunityRole.member:
        return
    membership.role = CommunityRole.member
    uow.session.add(membership)
    await uow.record(
        RoleChanged(
            community_id=community.id,
            user_id=data.from_user_id,
            old_role=old,
            new_role=CommunityRole.member,
            changed_by=actor.subject,
            changed_at=utcnow(),
        ),
        subject=str(community.id),
    )
    audit(
        uow=uow,
        actor_id=actor.subject,
        action="member.role_changed",
        target_type="user",
        target_id=data.from_user_id,
        community_id=community.id,
        reason=data.reason,
        details={"old_role": old, "new_role": CommunityRole.member},
    )
