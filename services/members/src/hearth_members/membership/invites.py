"""Invite links: create, list, revoke, redeem."""

from __future__ import annotations

import secrets
import uuid

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from hearth_members.communities.models import CommunityRole
from hearth_members.communities.service import acting_role, ensure_not_archived, load_community
from hearth_members.membership.events import InviteRedeemed
from hearth_members.membership.guards import banned, membership_of
from hearth_members.membership.joining import admit, raced
from hearth_members.membership.models import Invite, InviteCreate, Membership, MembershipStatus
from hearth_members.permissions import Action, check_grant
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.problems import Problem, conflict, not_found


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
        raise banned()  # a ban holds against invite links too
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
        membership, created = await admit(
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
        return await raced(uow, community.id, actor.subject), False
    return membership, created
