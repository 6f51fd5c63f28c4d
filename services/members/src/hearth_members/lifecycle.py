"""Membership lifecycle: join, apply and review, invites, leave, removal, ban, restore, roles,
ownership hand-over, cleanup. Races are settled by conditional UPDATEs, not by reading first."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from hearth_members.audit.service import SYSTEM_ACTOR, audit
from hearth_members.events import (
    InviteRedeemed,
    MemberApplied,
    MemberApproved,
    MemberBanned,
    MemberLeft,
    MemberMuted,
    MemberRejected,
    MemberRemovalScheduled,
    MemberRemoved,
    MemberRestored,
    OwnershipTransferred,
    RoleChanged,
)
from hearth_members.models import (
    Application,
    ApplicationCreate,
    ApplicationStatus,
    BulkHandover,
    BulkHandoverResult,
    CleanupGrounds,
    CleanupNotice,
    Community,
    CommunityKind,
    CommunityRole,
    DepartingRole,
    Goal,
    Invite,
    InviteCreate,
    JoinPolicy,
    Membership,
    MembershipStatus,
    MuteRequest,
    OwnershipTransfer,
    Removal,
)
from hearth_members.notifications import notify
from hearth_members.permissions import Action, check, check_grant, check_over
from hearth_members.profiles.models import Profile
from hearth_members.service import (
    acting_role,
    active_membership,
    ensure_not_archived,
    joined_event,
    load_community,
    membership_of,
    render_template,
    visible_community,
)
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.pagination import PageParams, after_id
from servicekit.problems import Problem, conflict, forbidden, not_found


def _banned() -> Problem:
    return Problem(403, "banned", "Forbidden", "you are banned from this community")


def refuse_owner(community: Community | None, membership: Membership) -> None:
    """Refuse to end or demote the current owner: a community always has exactly one."""
    owner_id = community.owner_id if community is not None else None
    if membership.role == CommunityRole.owner or membership.user_id == owner_id:
        raise conflict(
            "owner-must-transfer",
            "this person owns the community: transfer ownership first",
        )


async def _display_name(uow: UnitOfWork, user_id: uuid.UUID, fallback: str | None) -> str:
    profile = await uow.session.get(Profile, user_id)
    if profile is not None and profile.display_name:
        return profile.display_name
    return fallback or "there"


async def _admit(
    uow: UnitOfWork,
    community: Community,
    user_id: uuid.UUID,
    *,
    role: CommunityRole = CommunityRole.member,
    channel: str | None = None,
    name_hint: str | None = None,
    welcome: bool = True,
) -> tuple[Membership, bool]:
    """Make the user an active member (new or returning), with the event and the welcome."""
    membership = await membership_of(uow, community.id, user_id)
    if membership is not None:
        if membership.status == MembershipStatus.active:
            return membership, False
        if membership.status == MembershipStatus.banned:
            raise _banned()
        membership.status = MembershipStatus.active
        membership.role = role
        membership.joined_at = utcnow()
        membership.channel = channel
        membership.ended_at = membership.end_reason = membership.ended_by = None
        membership.evidence_ref = membership.removal_due_at = None
        membership.removal_notice_reason = None
    else:
        membership = Membership(
            community_id=community.id, user_id=user_id, role=role, channel=channel
        )
    uow.session.add(membership)
    await uow.record(joined_event(membership), subject=str(community.id))
    if not welcome:
        return membership, True
    template = (community.welcome_templates_by_channel or {}).get(channel or "") or (
        community.welcome_template
    )
    name = await _display_name(uow, user_id, name_hint)
    await notify(
        uow=uow,
        user_id=user_id,
        kind="welcome",
        title=f"Welcome to {community.name}",
        body=render_template(
            template, {"name": name, "community": community.name, "channel": channel or ""}
        ),
        community_id=community.id,
        data={"channel": channel} if channel else {},
    )
    return membership, True


async def _raced(uow: UnitOfWork, community_id: uuid.UUID, user_id: uuid.UUID) -> Membership:
    """After a unique-constraint failure: the concurrent join of the same person that won."""
    await uow.session.rollback()
    existing = await active_membership(uow, community_id, user_id)
    if existing is None:
        raise conflict("membership-race", "a concurrent change to this membership won; retry")
    return existing


async def join_community(
    *, uow: UnitOfWork, community_id: uuid.UUID, actor: Principal
) -> tuple[Membership, bool]:
    """Join an open community; joining again returns the existing membership (idempotent)."""
    community, _ = await visible_community(uow=uow, community_id=community_id, actor=actor)
    ensure_not_archived(community)
    existing = await membership_of(uow, community_id, actor.subject)
    if existing is not None and existing.status == MembershipStatus.active:
        return existing, False
    if existing is not None and existing.status == MembershipStatus.banned:
        raise _banned()
    if community.join_policy != JoinPolicy.open:
        raise Problem(
            403,
            "join-policy",
            "Forbidden",
            f"this community's join policy is {community.join_policy}",
        )
    try:
        membership, created = await _admit(uow, community, actor.subject, name_hint=actor.name)
        await uow.commit()
    except IntegrityError:  # two joins of the same person raced; the unique constraint chose
        return await _raced(uow, community_id, actor.subject), False
    return membership, created


async def leave_community(*, uow: UnitOfWork, community_id: uuid.UUID, actor: Principal) -> None:
    """Leave a community (the owner must hand over ownership first)."""
    membership = await active_membership(uow, community_id, actor.subject)
    if membership is None:
        raise not_found("membership", community_id)
    refuse_owner(None, membership)
    membership.status = MembershipStatus.left
    membership.ended_at = utcnow()
    uow.session.add(membership)
    await uow.record(
        MemberLeft(
            community_id=community_id,
            user_id=actor.subject,
            membership_id=membership.id,
            left_at=membership.ended_at,
        ),
        subject=str(community_id),
    )
    await uow.commit()


async def list_members(
    *,
    uow: UnitOfWork,
    community_id: uuid.UUID,
    actor: Principal,
    page: PageParams,
    status: MembershipStatus = MembershipStatus.active,
) -> list[Membership]:
    """Members of a visible community (limit+1 rows); other statuses for owners/admins only."""
    _, role = await visible_community(uow=uow, community_id=community_id, actor=actor)
    if status != MembershipStatus.active:
        check(actor, role, Action.ban_member)
    stmt = (
        select(Membership)
        .where(Membership.community_id == community_id, Membership.status == status)
        .order_by(col(Membership.id))
        .limit(page.limit + 1)
    )
    if page.after:
        stmt = stmt.where(col(Membership.id) > after_id(page))
    return list((await uow.session.exec(stmt)).all())


# --- applications -------------------------------------------------------------------------


async def apply(
    *, uow: UnitOfWork, community_id: uuid.UUID, data: ApplicationCreate, actor: Principal
) -> Application:
    """Apply to an approval-policy community; automatic rules may approve at once."""
    community, role = await visible_community(uow=uow, community_id=community_id, actor=actor)
    ensure_not_archived(community)
    if role is not None:
        raise conflict("already-member", "you are already a member")
    existing = await membership_of(uow, community_id, actor.subject)
    if existing is not None and existing.status == MembershipStatus.banned:
        raise _banned()
    if community.join_policy != JoinPolicy.approval:
        raise Problem(
            403,
            "join-policy",
            "Forbidden",
            f"this community's join policy is {community.join_policy}",
        )
    questions = {q["id"]: q for q in community.entry_questions or []}
    unknown = sorted(set(data.answers) - set(questions))
    missing = sorted(
        qid
        for qid, q in questions.items()
        if q.get("required") and not data.answers.get(qid, "").strip()
    )
    if unknown or missing:
        raise Problem(
            422,
            "answers-invalid",
            "Invalid request",
            "answer every required question, and only the questions asked",
            missing=missing,
            unknown=unknown,
        )
    application = Application(
        community_id=community_id,
        user_id=actor.subject,
        answers={k: v[:2000] for k, v in data.answers.items()},
        reviewer_id=community.owner_id,
    )
    try:
        await _record_application(uow, community, application, actor)
    except IntegrityError as exc:
        await uow.session.rollback()
        raise conflict("application-pending", "you already have a pending application") from exc
    return application


async def _record_application(
    uow: UnitOfWork, community: Community, application: Application, actor: Principal
) -> None:
    community_id = community.id
    uow.session.add(application)
    await uow.record(
        MemberApplied(
            application_id=application.id,
            community_id=community_id,
            user_id=actor.subject,
            applied_at=application.created_at,
        ),
        subject=str(community_id),
    )
    automatic = await _auto_approves(uow, community, actor.subject)
    if automatic:
        application.status = ApplicationStatus.approved
        application.decided_at = utcnow()
        application.decided_automatically = True
        application.reason = automatic
        await uow.record(_approved(application), subject=str(community_id))
        await _admit(uow, community, actor.subject, name_hint=actor.name)
    else:
        await notify(
            uow=uow,
            user_id=community.owner_id,
            kind="application.received",
            title=f"New application to {community.name}",
            body="An application is waiting for review.",
            community_id=community_id,
            data={"application_id": str(application.id)},
        )
    await uow.commit()


async def _auto_approves(uow: UnitOfWork, community: Community, user_id: uuid.UUID) -> str | None:
    """Why the automatic rules approve this applicant, or None (then a human reviews)."""
    if community.auto_approve_when_answered:
        return "automatic: every required question answered"
    domains = community.auto_approve_email_domains or []
    if community.kind == CommunityKind.internal and domains:
        from hearth_members.profiles.service import domain_index

        profile = await uow.session.get(Profile, user_id)
        if profile is not None and profile.email_verified and profile.email_domain_idx:
            wanted = {domain_index(uow, d) for d in domains}
            if profile.email_domain_idx in wanted:
                return "automatic: verified e-mail in an approved domain"
    return None


def _approved(application: Application) -> MemberApproved:
    return MemberApproved(
        application_id=application.id,
        community_id=application.community_id,
        user_id=application.user_id,
        decided_by=application.decided_by,
        automatic=application.decided_automatically,
        decided_at=application.decided_at or utcnow(),
    )


async def decide(
    *,
    uow: UnitOfWork,
    community_id: uuid.UUID,
    application_id: uuid.UUID,
    actor: Principal,
    approve: bool,
    reason: str | None,
) -> Application:
    """Approve or reject a pending application; of two concurrent deciders one gets 409."""
    community, _ = await acting_role(
        uow=uow, community_id=community_id, actor=actor, action=Action.review_applications
    )
    if not approve and not (reason and reason.strip()):
        raise Problem(422, "reason-required", "Invalid request", "a rejection needs a reason")
    application = await uow.session.get(Application, application_id)
    if application is None or application.community_id != community_id:
        raise not_found("application", application_id)
    now = utcnow()
    new_status = ApplicationStatus.approved if approve else ApplicationStatus.rejected
    # The status guard in the WHERE clause is the lock: whoever flips pending first wins.
    result = await uow.session.exec(
        update(Application)
        .where(
            col(Application.id) == application_id,
            col(Application.status) == ApplicationStatus.pending,
        )
        .values(status=new_status, decided_by=actor.subject, decided_at=now, reason=reason)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        await uow.session.rollback()
        raise conflict("application-decided", "this application was already decided")
    await uow.session.refresh(application)
    if approve:
        ensure_not_archived(community)
        await uow.record(_approved(application), subject=str(community_id))
        await _admit(uow, community, application.user_id)
        await notify(
            uow=uow,
            user_id=application.user_id,
            kind="application.approved",
            title=f"Your application to {community.name} was approved",
            body=reason or "Welcome aboard.",
            community_id=community_id,
            data={"application_id": str(application.id)},
        )
    else:
        await uow.record(
            MemberRejected(
                application_id=application.id,
                community_id=community_id,
                user_id=application.user_id,
                decided_by=actor.subject,
                reason=reason or "",
                decided_at=now,
            ),
            subject=str(community_id),
        )
        await notify(
            uow=uow,
            user_id=application.user_id,
            kind="application.rejected",
            title=f"Your application to {community.name} was not accepted",
            body=reason or "",
            community_id=community_id,
            data={"application_id": str(application.id)},
        )
    await uow.commit()
    return application


async def list_applications(
    *,
    uow: UnitOfWork,
    community_id: uuid.UUID,
    actor: Principal,
    page: PageParams,
    status: ApplicationStatus | None = None,
) -> list[Application]:
    """A community's applications for its reviewers (limit+1 rows)."""
    await acting_role(
        uow=uow, community_id=community_id, actor=actor, action=Action.review_applications
    )
    stmt = (
        select(Application)
        .where(Application.community_id == community_id)
        .order_by(col(Application.id))
        .limit(page.limit + 1)
    )
    if status is not None:
        stmt = stmt.where(Application.status == status)
    if page.after:
        stmt = stmt.where(col(Application.id) > after_id(page))
    return list((await uow.session.exec(stmt)).all())


async def my_applications(
    *, uow: UnitOfWork, actor: Principal, page: PageParams
) -> list[Application]:
    """The caller's own applications with their decisions and reasons (limit+1 rows)."""
    stmt = (
        select(Application)
        .where(Application.user_id == actor.subject)
        .order_by(col(Application.id))
        .limit(page.limit + 1)
    )
    if page.after:
        stmt = stmt.where(col(Application.id) > after_id(page))
    return list((await uow.session.exec(stmt)).all())


# --- invites ------------------------------------------------------------------------------


async def create_invite(
    *, uow: UnitOfWork, community_id: uuid.UUID, data: InviteCreate, actor: Principal
) -> Invite:
    """Create an invite link (owner, admin); it may grant at most the moderator role."""
    community, role = await acting_role(
        uow=uow, community_id=community_id, actor=actor, action=Action.manage_invites
    )
    ensure_not_archived(community)
    if data.default_role != CommunityRole.member:
        check_grant(actor, role, data.default_role)
    if data.expires_at is not None and data.expires_at <= utcnow():
        raise Problem(422, "expired", "Invalid request", "expires_at must be in the future")
    invite = Invite(
        community_id=community_id,
        token=secrets.token_urlsafe(24),
        channel=data.channel,
        default_role=data.default_role,
        max_uses=data.max_uses,
        expires_at=data.expires_at,
        created_by=actor.subject,
    )
    uow.session.add(invite)
    await uow.commit()
    return invite


async def list_invites(
    *, uow: UnitOfWork, community_id: uuid.UUID, actor: Principal
) -> list[Invite]:
    """A community's invites (owner, admin)."""
    await acting_role(uow=uow, community_id=community_id, actor=actor, action=Action.manage_invites)
    stmt = select(Invite).where(Invite.community_id == community_id).order_by(col(Invite.id))
    return list((await uow.session.exec(stmt)).all())


async def revoke_invite(
    *, uow: UnitOfWork, community_id: uuid.UUID, invite_id: uuid.UUID, actor: Principal
) -> Invite:
    """Revoke an invite link (owner, admin)."""
    await acting_role(uow=uow, community_id=community_id, actor=actor, action=Action.manage_invites)
    invite = await uow.session.get(Invite, invite_id)
    if invite is None or invite.community_id != community_id:
        raise not_found("invite", invite_id)
    if invite.revoked_at is None:
        invite.revoked_at = utcnow()
        uow.session.add(invite)
        await uow.commit()
    return invite


async def redeem_invite(
    *, uow: UnitOfWork, token: str, actor: Principal
) -> tuple[Membership, bool]:
    """Join through an invite link; each use is claimed by a conditional UPDATE (never over)."""
    invite = (await uow.session.exec(select(Invite).where(Invite.token == token))).first()
    if invite is None:
        raise not_found("invite")
    community = await load_community(uow, invite.community_id)
    ensure_not_archived(community)
    existing = await membership_of(uow, community.id, actor.subject)
    if existing is not None and existing.status == MembershipStatus.active:
        return existing, False  # already in: no use is spent
    if existing is not None and existing.status == MembershipStatus.banned:
        raise _banned()  # a ban holds against invite links too
    now = utcnow()
    if invite.revoked_at is not None or (
        invite.expires_at is not None and invite.expires_at <= now
    ):
        raise Problem(410, "invite-expired", "Gone", "this invite link is no longer valid")
    claimed = await uow.session.exec(
        update(Invite)
        .where(
            col(Invite.id) == invite.id,
            col(Invite.revoked_at).is_(None),
            (col(Invite.max_uses).is_(None)) | (col(Invite.uses) < col(Invite.max_uses)),
        )
        .values(uses=Invite.uses + 1)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        await uow.session.rollback()
        raise conflict("invite-exhausted", "this invite link has been used up")
    try:
        membership, created = await _admit(
            uow,
            community,
            actor.subject,
            role=invite.default_role,
            channel=invite.channel,
            name_hint=actor.name,
        )
        await uow.record(
            InviteRedeemed(
                invite_id=invite.id,
                community_id=community.id,
                user_id=actor.subject,
                channel=invite.channel,
                redeemed_at=now,
            ),
            subject=str(community.id),
        )
        await uow.commit()
    except IntegrityError:  # the same person redeemed twice at once: the use is rolled back too
        return await _raced(uow, community.id, actor.subject), False
    return membership, created


# --- removal, ban, restore, mute ---------------------------------------------------------


async def _target(uow: UnitOfWork, community_id: uuid.UUID, user_id: uuid.UUID) -> Membership:
    membership = await active_membership(uow, community_id, user_id)
    if membership is None:
        raise not_found("member", user_id)
    return membership


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
    *, uow: UnitOfWork, community_id: uuid.UUID, user_id: uuid.UUID, data: Removal, actor: Principal
) -> Membership:
    """Remove a member ranked below the actor, with a reason and a notice to them."""
    community, role = await acting_role(
        uow=uow, community_id=community_id, actor=actor, action=Action.remove_member
    )
    target = await _target(uow, community_id, user_id)
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
    *, uow: UnitOfWork, community_id: uuid.UUID, user_id: uuid.UUID, data: Removal, actor: Principal
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
    if membership is None:
        membership = Membership(community_id=community_id, user_id=user_id)
    now = utcnow()
    membership.status = MembershipStatus.banned
    membership.role = CommunityRole.member
    membership.ended_at = now
    membership.end_reason = data.reason
    membership.ended_by = actor.subject
    membership.evidence_ref = data.evidence_ref
    uow.session.add(membership)
    try:
        await uow.session.flush()
    except IntegrityError as exc:  # the person joined (or was banned) at the same moment
        await uow.session.rollback()
        raise conflict("membership-race", "the membership changed meanwhile; retry") from exc
    await uow.record(
        MemberBanned(
            community_id=community_id,
            user_id=user_id,
            banned_by=actor.subject,
            reason=data.reason,
            banned_at=now,
        ),
        subject=str(community_id),
    )
    await notify(
        uow=uow,
        user_id=user_id,
        kind="member.banned",
        title=f"You were banned from {community.name}",
        body=data.reason,
        community_id=community_id,
    )
    audit(
        uow=uow,
        actor_id=actor.subject,
        action="member.banned",
        target_type="user",
        target_id=user_id,
        community_id=community_id,
        reason=data.reason,
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
        await _admit(uow, community, user_id, welcome=False)
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
    target = await _target(uow, community_id, user_id)
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


# --- roles and ownership ------------------------------------------------------------------


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
    target = await _target(uow, community_id, user_id)
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
    *, uow: UnitOfWork, community_id: uuid.UUID, data: OwnershipTransfer, actor: Principal
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
    *, uow: UnitOfWork, data: BulkHandover, actor: Principal
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
    uow: UnitOfWork, community: Community, data: BulkHandover, actor: Principal
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


# --- cleanup ------------------------------------------------------------------------------


async def give_cleanup_notice(
    *,
    uow: UnitOfWork,
    community_id: uuid.UUID,
    user_id: uuid.UUID,
    data: CleanupNotice,
    actor: Principal,
    default_grace_days: float,
) -> Membership:
    """Tell a member they will be removed after a grace period, citing the evidence."""
    community, role = await acting_role(
        uow=uow, community_id=community_id, actor=actor, action=Action.cleanup_notice
    )
    target = await _target(uow, community_id, user_id)
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
    uow: UnitOfWork, community_id: uuid.UUID, user_id: uuid.UUID, data: CleanupNotice
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
    target = await _target(uow, community_id, user_id)
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
