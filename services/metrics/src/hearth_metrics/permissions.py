"""Who may read a community's metrics: one function, checked against metrics' read models.

- Platform staff (admin, operator) read every community's metrics.
- API keys (service principals) read by scope: `metrics:read` (any community).
- A community's owners and admins (membership read model, active) read all of its metrics.
- Any other active member reads only what the community publishes to its members
  (`CommunityPolicy.published`, e.g. its `leaderboard`).
- Everyone else is refused: 404 for a person who is not a member (whether a community has
  metrics is not revealed), 403 for a member asking for what is not published.
"""

from __future__ import annotations

import uuid

from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_metrics.communities.models import CommunityPolicy, Membership
from servicekit.identity import Principal
from servicekit.problems import Problem, forbidden, not_found

READ_SCOPE = "metrics:read"
MANAGERS = frozenset({"owner", "admin"})
ACTIVE = "active"


def _insufficient_scope(scope: str) -> Problem:
    return Problem(
        403,
        "insufficient-scope",
        "Forbidden",
        f"this API key lacks the scope {scope!r}",
        required_scope=scope,
    )


async def community_role(
    session: AsyncSession, principal: Principal, community_id: uuid.UUID
) -> str | None:
    """The caller's role in the community while an active member, else None."""
    if principal.kind != "user":
        return None
    row = await session.get(Membership, (community_id, principal.subject))
    return row.role if row is not None and row.status == ACTIVE else None


async def require_reader(
    session: AsyncSession, principal: Principal, community_id: uuid.UUID, *, what: str
) -> None:
    """Refuse (403/404 problem) unless the caller may read the community's measure `what`."""
    if principal.is_staff:
        return
    if principal.kind == "service":
        if READ_SCOPE not in principal.scopes:
            raise _insufficient_scope(READ_SCOPE)
        return
    role = await community_role(session, principal, community_id)
    if role is None:
        raise not_found("community", community_id)
    if role in MANAGERS:
        return
    policy = await session.get(CommunityPolicy, community_id)
    if policy is None or what not in policy.published:
        raise forbidden(f"this community does not publish its {what} to members")


async def require_manager(
    session: AsyncSession, principal: Principal, community_id: uuid.UUID
) -> None:
    """Refuse unless the caller may change the community's metrics policy (owner, admin, staff)."""
    if principal.is_staff:
        return
    role = await community_role(session, principal, community_id)
    if role is None:
        raise not_found("community", community_id)
    if role not in MANAGERS:
        raise forbidden("only the community's owners and admins change its metrics policy")
