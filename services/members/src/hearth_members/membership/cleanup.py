"""Cleanup notices, the removals due after their notice period, and the loop that runs them."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlmodel import col, select

from hearth_members.audit.service import audit
from hearth_members.communities.models import CommunityRole
from hearth_members.communities.service import acting_role, load_community
from hearth_members.membership.events import MemberRemovalScheduled
from hearth_members.membership.guards import member_to_act_on, refuse_owner
from hearth_members.membership.models import (
    CleanupGrounds,
    CleanupNoticeRequest,
    Membership,
    MembershipStatus,
)
from hearth_members.membership.sanctions import end_membership
from hearth_members.notifications import notify
from hearth_members.permissions import Action, check_over
from hearth_members.settings import MembersSettings
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.periodic import periodic
from servicekit.problems import Problem, conflict
from servicekit.runtime import ServiceRuntime, settings_of


async def give_cleanup_notice(
    *,
    uow: UnitOfWork,
    community_id: uuid.UUID,
    user_id: uuid.UUID,
    data: CleanupNoticeRequest,
    actor: Principal,
    default_grace_days: float,
) -> Membership:
    """Tell a member they will be removed after a grace period, citing the evidence."""
    community, role = await acting_role(
        uow=uow, community_id=community_id, actor=actor, action=Action.cleanup_notice
    )
    target = await member_to_act_on(uow, community_id, user_id)
    check_over(actor, role, Action.cleanup_notice, target.role)
    refuse_owner(community, target)
    evidence = await _cleanup_evidence(uow, community_id, user_id, data)
    grace = data.grace_days if data.grace_days is not None else default_grace_days
    target.removal_due_at = utcnow() + timedelta(days=grace)
    target.removal_notice_reason = data.reason
    target.evidence_ref = evidence
    uow.session.add(target)
    await uow.record(
        MemberRemovalScheduled(
            community_id=community_id,
            user_id=user_id,
            membership_id=target.id,
            reason=data.reason,
            evidence_ref=evidence,
            removal_due_at=target.removal_due_at,
        ),
        subject=str(community_id),
    )
    await notify(
        uow=uow,
        user_id=user_id,
        kind="cleanup.notice",
        title=f"You will be removed from {community.name}",
        body=f"{data.reason} Removal is due at {target.removal_due_at:%Y-%m-%d %H:%M} UTC.",
        community_id=community_id,
        data={
            "removal_due_at": target.removal_due_at.isoformat(),
            "grounds": data.grounds.value,
            "evidence_ref": evidence,
        },
    )
    audit(
        uow=uow,
        actor_id=actor.subject,
        action="member.cleanup_notice",
        target_type="user",
        target_id=user_id,
        community_id=community_id,
        reason=data.reason,
        details={"grounds": data.grounds.value, "evidence_ref": evidence, "grace_days": grace},
    )
    await uow.commit()
    return target


async def _cleanup_evidence(
    uow: UnitOfWork, community_id: uuid.UUID, user_id: uuid.UUID, data: CleanupNoticeRequest
) -> str:
    """The evidence a cleanup notice cites: the caller's, or metrics' record of inactivity."""
    cited = (data.evidence_ref or "").strip()
    if cited:
        return cited
    if data.grounds == CleanupGrounds.inactivity:
        from hearth_members.tiers.service import inactivity_record

        record = await inactivity_record(uow=uow, community_id=community_id, user_id=user_id)
        if record is not None:
            return record
        detail = "metrics has not reported this member inactive: cite the evidence (evidence_ref)"
    else:
        detail = "a cleanup for violations must cite moderation's record (evidence_ref)"
    raise Problem(422, "evidence-required", "Invalid request", detail)


async def withdraw_cleanup_notice(
    *, uow: UnitOfWork, community_id: uuid.UUID, user_id: uuid.UUID, actor: Principal
) -> Membership:
    """Cancel a pending cleanup removal."""
    await acting_role(uow=uow, community_id=community_id, actor=actor, action=Action.cleanup_notice)
    target = await member_to_act_on(uow, community_id, user_id)
    if target.removal_due_at is None:
        raise conflict("no-notice", "this member has no pending removal")
    target.removal_due_at = None
    target.removal_notice_reason = None
    uow.session.add(target)
    audit(
        uow=uow,
        actor_id=actor.subject,
        action="member.cleanup_withdrawn",
        target_type="user",
        target_id=user_id,
        community_id=community_id,
    )
    await uow.commit()
    return target


async def run_due_removals(*, uow: UnitOfWork, limit: int = 100) -> int:
    """Remove members whose notice period is over; each claimed by its row's version."""
    now = utcnow()
    # Replicas skip the rows another one has locked (PostgreSQL; SQLite has one writer). The
    # claim is the removal's own UPDATE: it carries the version read here, so a membership
    # changed meanwhile (notice withdrawn, member left) fails the batch with StaleDataError
    # instead of being removed on stale grounds. An owner is never cleaned up.
    due = list(
        (
            await uow.session.exec(
                select(Membership)
                .where(
                    Membership.status == MembershipStatus.active,
                    Membership.role != CommunityRole.owner,
                    col(Membership.removal_due_at).is_not(None),
                    col(Membership.removal_due_at) <= now,
                )
                .order_by(col(Membership.removal_due_at), col(Membership.id))
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
    )
    done = 0
    for membership in due:
        community = await load_community(uow, membership.community_id)
        await end_membership(
            uow,
            community,
            membership,
            actor_id=None,
            reason=membership.removal_notice_reason or "cleanup",
            evidence_ref=membership.evidence_ref,
            cause="cleanup",
        )
        done += 1
    await uow.commit()
    return done


async def _cleanup_pass(runtime: ServiceRuntime) -> str | None:
    """Remove the members whose removal is due (each claimed with SKIP LOCKED)."""
    async with runtime.db.session() as session:
        removed = await run_due_removals(uow=UnitOfWork(session, runtime))
    return f"removed {removed} members after their notice period" if removed else None


cleanup_loop = periodic(
    "cleanup_loop",
    _cleanup_pass,
    interval=lambda rt: settings_of(rt, MembersSettings).cleanup_interval_seconds,
)
