"""Membership look-ups and the refusals every membership change shares."""

from __future__ import annotations

import uuid

from sqlmodel import select

from hearth_members.communities.models import Community, CommunityRole
from hearth_members.membership.events import MemberJoined
from hearth_members.membership.models import Membership, MembershipStatus
from servicekit.deps import UnitOfWork
from servicekit.problems import Problem, conflict, not_found


async def membership_of(
    uow: UnitOfWork, community_id: uuid.UUID, user_id: uuid.UUID
) -> Membership | None:
    """The user's membership row in a community, whatever its status."""
    stmt = select(Membership).where(
        Membership.community_id == community_id, Membership.user_id == user_id
    )
    return (await uow.session.exec(stmt)).first()


async def active_membership(
    uow: UnitOfWork, community_id: uuid.UUID, user_id: uuid.UUID
) -> Membership | None:
    """The user's active membership, if any."""
    found = await membership_of(uow, community_id, user_id)
    return found if found is not None and found.status == MembershipStatus.active else None


def banned() -> Problem:
    return Problem(403, "banned", "Forbidden", "you are banned from this community")


def refuse_owner(community: Community | None, membership: Membership) -> None:
    """Refuse to end or demote the current owner: a community always has exactly one."""
    owner_id = community.owner_id if community is not None else None
    if membership.role == CommunityRole.owner or membership.user_id == owner_id:
        raise conflict(
            "owner-must-transfer",
            "this person owns the community: transfer ownership first",
        )


async def member_to_act_on(
    uow: UnitOfWork, community_id: uuid.UUID, user_id: uuid.UUID
) -> Membership:
    membership = await active_membership(uow, community_id, user_id)
    if membership is None:
        raise not_found("member", user_id)
    return membership


def joined_event(membership: Membership) -> MemberJoined:
    """The joined event of a membership."""
    return MemberJoined(
        community_id=membership.community_id,
        user_id=membership.user_id,
        membership_id=membership.id,
        role=membership.role,
        joined_at=membership.joined_at,
        channel=membership.channel,
    )
