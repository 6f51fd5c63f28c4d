"""Applications to join and their review."""

from __future__ import annotations

import uuid

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from hearth_members.communities.models import Community, CommunityKind, JoinPolicy
from hearth_members.communities.service import acting_role, ensure_not_archived, visible_community
from hearth_members.membership.events import MemberApplied, MemberApproved, MemberRejected
from hearth_members.membership.guards import banned, membership_of
from hearth_members.membership.joining import admit
from hearth_members.membership.models import (
    Application,
    ApplicationCreate,
    ApplicationStatus,
    MembershipStatus,
)
from hearth_members.notifications import notify
from hearth_members.permissions import Action
from hearth_members.profiles.models import Profile
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.pagination import PageParams, after_id
from servicekit.problems import Problem, conflict, not_found


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
        raise banned()
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
        await admit(uow, community, actor.subject, name_hint=actor.name)
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
        await admit(uow, community, application.user_id)
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
