"""Community-role checks against moderation's membership read model (members' snapshots)."""

from __future__ import annotations

import uuid

from hearth_moderation.models import RULE_MANAGERS, Membership
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.problems import forbidden

# Community roles that moderate (rules, queue, sanctions, appeals), with platform staff.
MODERATORS = RULE_MANAGERS


async def membership_of(
    uow: UnitOfWork, community_id: uuid.UUID, user_id: uuid.UUID
) -> Membership | None:
    """The read model's row of a person in a community, if any."""
    return await uow.session.get(Membership, (community_id, user_id))


async def is_moderator(uow: UnitOfWork, community_id: uuid.UUID, actor: Principal) -> bool:
    """Platform staff, or the community's owner, an admin or a moderator with an active seat."""
    if actor.is_staff:
        return True
    row = await membership_of(uow, community_id, actor.subject)
    return row is not None and row.status == "active" and row.role in MODERATORS


async def require_moderator(
    uow: UnitOfWork, community_id: uuid.UUID, actor: Principal, *, doing: str = "this"
) -> None:
    """Refuse anyone but platform staff and the community's owner, admins and moderators."""
    if not await is_moderator(uow, community_id, actor):
        raise forbidden(f"{doing} needs the community's owner, an admin or a moderator")


async def require_member(uow: UnitOfWork, community_id: uuid.UUID, actor: Principal) -> Membership:
    """The actor's active membership, or a 403."""
    row = await membership_of(uow, community_id, actor.subject)
    if row is None or row.status != "active":
        raise forbidden("only members of this community may do this")
    return row
