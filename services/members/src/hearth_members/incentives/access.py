"""Who may do what with incentives, tiers and care (community roles from members' own data).

Managing incentives, tiers and care counts as `Action.update` of members' permission matrix
(`hearth_members.permissions`: platform staff, the community's owner and admins); active
members read; a private community stays invisible (404) to outsiders.
"""

from __future__ import annotations

import uuid

from sqlmodel import select

from hearth_members.communities.models import Community, CommunityRole, Visibility
from hearth_members.membership.models import Membership, MembershipStatus
from hearth_members.permissions import Action, allowed
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.problems import Problem, forbidden, not_found


async def community_or_404(uow: UnitOfWork, community_id: uuid.UUID) -> Community:
    """The community, or a 404 problem."""
    community = await uow.session.get(Community, community_id)
    if community is None:
        raise not_found("community", community_id)
    return community


async def active_role(
    uow: UnitOfWork, community_id: uuid.UUID, user_id: uuid.UUID
) -> CommunityRole | None:
    """The user's role in the community if their membership is active."""
    stmt = select(Membership).where(
        Membership.community_id == community_id,
        Membership.user_id == user_id,
        Membership.status == MembershipStatus.active,
    )
    found = (await uow.session.exec(stmt)).first()
    return CommunityRole(found.role) if found is not None else None


async def require_manager(uow: UnitOfWork, community_id: uuid.UUID, actor: Principal) -> Community:
    """Staff, or the community's owner or an admin; others get 403 (404 if they cannot see it)."""
    community = await community_or_404(uow, community_id)
    if actor.is_staff:
        return community
    role = await active_role(uow, community_id, actor.subject)
    if role is None and community.visibility == Visibility.private:
        raise not_found("community", community_id)
    if not allowed(actor, role, Action.update):
        raise forbidden("only the community's owner and admins may do this")
    return community


async def require_reader(uow: UnitOfWork, community_id: uuid.UUID, actor: Principal) -> Community:
    """Staff or an active member of the community."""
    community = await community_or_404(uow, community_id)
    if actor.is_staff:
        return community
    if await active_role(uow, community_id, actor.subject) is None:
        if community.visibility == Visibility.private:
            raise not_found("community", community_id)
        raise Problem(403, "not-a-member", "Forbidden", "only members of the community may do this")
    return community


async def require_self_or_manager(
    uow: UnitOfWork, community_id: uuid.UUID, user_id: uuid.UUID, actor: Principal
) -> Community:
    """A member reading their own standing, or a manager reading anyone's."""
    if actor.subject == user_id:
        return await require_reader(uow, community_id, actor)
    return await require_manager(uow, community_id, actor)


async def require_member(uow: UnitOfWork, community_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """404 unless the user is an active member (points and badges go to members only)."""
    if await active_role(uow, community_id, user_id) is None:
        raise not_found("member", user_id)
