"""Who may run an activity on the day, and who may take part: the checks check-in, draws and
Q&A share, against the memberships read model (members' snapshots).
"""

from __future__ import annotations

import uuid

from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_events.models import Activity, CommunityMembership
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.problems import Problem, forbidden, not_found
from servicekit.types import as_utc

ACTIVE = "active"
# Community roles (members' vocabulary) that run every activity of their community.
ORGANISER_ROLES = frozenset({"owner", "admin"})
# Moderators see who asked an anonymous question (anonymous to members, never to moderation).
MODERATION_ROLES = ORGANISER_ROLES | {"moderator"}
ORGANISER_REFUSAL = (
    "requires platform staff, the community's owner or admin, or the activity's creator"
)


async def membership(
    session: AsyncSession, community_id: uuid.UUID, user_id: uuid.UUID
) -> CommunityMembership | None:
    """The read model's membership row, active or not."""
    return await session.get(CommunityMembership, (community_id, user_id))


async def is_host(session: AsyncSession, activity: Activity, actor: Principal) -> bool:
    """The community's active owners and admins or the activity's hosts (not platform staff)."""
    found = await membership(session, activity.community_id, actor.subject)
    if found is None or found.status != ACTIVE:
        return False
    return found.role in ORGANISER_ROLES or str(actor.subject) in (activity.hosts or [])


async def is_organiser(session: AsyncSession, activity: Activity, actor: Principal) -> bool:
    """Whether the actor runs this activity on the day (check-in, draws, Q&A): staff, a host
    (`is_host`), or its creator while still an active member.
    """
    if actor.is_staff or await is_host(session, activity, actor):
        return True
    found = await membership(session, activity.community_id, actor.subject)
    return found is not None and found.status == ACTIVE and activity.created_by == actor.subject


async def require_organiser(session: AsyncSession, activity: Activity, actor: Principal) -> None:
    """403 unless the actor organises the activity."""
    if not await is_organiser(session, activity, actor):
        raise forbidden(ORGANISER_REFUSAL)


async def sees_moderation(session: AsyncSession, activity: Activity, actor: Principal) -> bool:
    """Whether the actor moderates the community (sees anonymous authors, held questions)."""
    if await is_organiser(session, activity, actor):
        return True
    found = await membership(session, activity.community_id, actor.subject)
    return found is not None and found.status == ACTIVE and found.role in MODERATION_ROLES


async def require_member(session: AsyncSession, activity: Activity, actor: Principal) -> None:
    """403 unless the actor is staff or an active member of the activity's community."""
    if actor.is_staff:
        return
    found = await membership(session, activity.community_id, actor.subject)
    if found is None or found.status != ACTIVE:
        raise forbidden("only active members of the community may take part")


async def require_voice(session: AsyncSession, activity: Activity, actor: Principal) -> None:
    """403 unless the actor is an active, unmuted member (to ask, vote or register)."""
    found = await membership(session, activity.community_id, actor.subject)
    if found is None or found.status != ACTIVE:
        raise forbidden("only active members of the community may take part")
    refuse_muted(found)


def refuse_muted(found: CommunityMembership) -> None:
    """403 naming the mute's end while the member is muted."""
    if found.muted_until is not None and as_utc(found.muted_until) > utcnow():
        raise Problem(
            403,
            "muted",
            "Muted",
            "muted members may not take part until the mute ends",
            muted_until=as_utc(found.muted_until).isoformat(),
        )


async def activity_of(
    session: AsyncSession, activity_id: uuid.UUID, *, fresh: bool = False
) -> Activity:
    """The activity, or a 404."""
    activity = await session.get(Activity, activity_id, populate_existing=fresh)
    if activity is None:
        raise not_found("activity", activity_id)
    return activity
