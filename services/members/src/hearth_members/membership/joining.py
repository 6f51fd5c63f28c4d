"""Join, leave and list members. Races are settled by conditional UPDATEs, not by reading first."""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from hearth_members.communities.models import Community, CommunityRole, JoinPolicy
from hearth_members.communities.service import (
    ensure_not_archived,
    render_template,
    visible_community,
)
from hearth_members.membership.events import MemberLeft
from hearth_members.membership.guards import (
    active_membership,
    banned,
    joined_event,
    membership_of,
    refuse_owner,
)
from hearth_members.membership.models import Membership, MembershipStatus
from hearth_members.notifications import notify
from hearth_members.permissions import Action, check
from hearth_members.profiles.models import Profile
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.pagination import PageParams, after_id
from servicekit.problems import Problem, conflict, not_found


async def _display_name(uow: UnitOfWork, user_id: uuid.UUID, fallback: str | None) -> str:
    profile = await uow.session.get(Profile, user_id)
    if profile is not None and profile.display_name:
        return profile.display_name
    return fallback or "there"


async def admit(
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
            raise banned()
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


async def raced(uow: UnitOfWork, community_id: uuid.UUID, user_id: uuid.UUID) -> Membership:
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
        raise banned()
    if community.join_policy != JoinPolicy.open:
        raise Problem(
            403,
            "join-policy",
            "Forbidden",
            f"this community's join policy is {community.join_policy}",
        )
    try:
        membership, created = await admit(uow, community, actor.subject, name_hint=actor.name)
        await uow.commit()
    except IntegrityError:  # two joins of the same person raced; the unique constraint chose
        return await raced(uow, community_id, actor.subject), False
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
