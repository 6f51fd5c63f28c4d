"""The write gate: may this person write in this community (post, comment, react, vote)?

One place decides it for every write path, from content's membership and community read
models, so every refusal says the same thing the same way:

- no membership, or one that was left → 403 `not-a-member`;
- removed → 403 `removed`; banned → 403 `banned`; any other non-active status → 403
  `not-a-member`;
- muted → 403 `muted`, with `muted_until` (ISO 8601) in the body and the detail;
- the community archived → 409 `community-archived` (read-only, not hidden).

Membership is checked before the archive, so a stranger learns nothing about the community's
state. Platform staff are not exempt: a write is a member's act.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from hearth_content.models import Community, Membership, MembershipStatus
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.problems import Problem


def aware(value: datetime) -> datetime:
    """A stored time as UTC-aware (SQLite hands back naive datetimes, all written as UTC)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def refusal(membership: Membership | None, *, now: datetime | None = None) -> Problem | None:
    """Why this membership may not write (a 403 problem), or None if it may."""
    if membership is None or membership.status in (None, MembershipStatus.left):
        return Problem(
            403, "not-a-member", "Forbidden", "only members of this community may do this"
        )
    if membership.status == MembershipStatus.removed:
        return Problem(403, "removed", "Forbidden", "you were removed from this community")
    if membership.status == MembershipStatus.banned:
        return Problem(403, "banned", "Forbidden", "you are banned from this community")
    if membership.status != MembershipStatus.active:
        return Problem(403, "not-a-member", "Forbidden", "your membership is not active")
    if membership.muted_until is not None:
        until = aware(membership.muted_until)
        if until > (now or utcnow()):
            return Problem(
                403,
                "muted",
                "Forbidden",
                f"you are muted in this community until {until.isoformat()}",
                muted_until=until.isoformat(),
            )
    return None


async def writer(uow: UnitOfWork, community_id: uuid.UUID, actor: Principal) -> Membership:
    """The actor's membership if they may write in the community; else the problem saying why."""
    membership = await uow.session.get(Membership, (community_id, actor.subject))
    problem = refusal(membership)
    if problem is not None:
        raise problem
    assert membership is not None
    community = await uow.session.get(Community, community_id)
    if community is not None and community.archived:
        raise Problem(
            409, "community-archived", "Conflict", "the community is archived (read-only)"
        )
    return membership


async def visible_writer(uow: UnitOfWork, community_id: uuid.UUID, actor: Principal) -> Membership:
    """`writer`, but a stranger to a community they cannot see gets its 404, not a 403.

    A removed or banned member knows the community, so they are told why (403) instead.
    """
    from hearth_content.service import _community_access  # service imports guards: late

    membership = await uow.session.get(Membership, (community_id, actor.subject))
    if membership is None or membership.status not in (
        MembershipStatus.removed,
        MembershipStatus.banned,
    ):
        await _community_access(uow, community_id, actor)
    return await writer(uow, community_id, actor)
