"""Inactivity detection: member.inactive once when a member goes quiet, member.active on return.

A member is quiet in a community once `inactive_days` (the community's policy) have passed
since their last activity there (or since they joined, when they never acted). A top
contributor (top quartile of the community's contributors by contributions) is announced
`quiet_top_contributor` once quiet between `quiet_top_min_days` and `quiet_top_max_days`.
Only current members (membership read model, active) are announced.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa

from hearth_metrics.activity.models import MemberState
from hearth_metrics.communities.models import Membership
from hearth_metrics.communities.service import Policy, policies
from hearth_metrics.inactivity.events import MemberActive, MemberInactive
from hearth_metrics.inactivity.models import InactivityMark
from hearth_metrics.settings import MetricsSettings
from servicekit.db import upsert_insert
from servicekit.deps import UnitOfWork

INACTIVE = "inactive"
QUIET_TOP = "quiet_top_contributor"


def _t(model: object) -> sa.Table:
    return model.__table__  # type: ignore[attr-defined, no-any-return]


async def returned(uow: UnitOfWork, *, first_active: dict[tuple[uuid.UUID, int], datetime]) -> int:
    """Clear the marks of members active again (after the activity the mark saw); announce each
    return once with member.active. Runs in the ingest's transaction."""
    if not first_active:
        return 0
    session = uow.session
    marks = _t(InactivityMark)
    pairs = sorted(first_active)
    rows = (
        await session.execute(
            sa.select(marks.c.community_id, marks.c.member).where(
                sa.tuple_(marks.c.community_id, marks.c.member).in_(pairs)
            )
        )
    ).all()
    announced = 0
    for community_id, member in sorted(set(rows)):
        at = first_active[(community_id, member)]
        deleted = (
            await session.execute(
                marks.delete()
                .where(
                    marks.c.community_id == community_id,
                    marks.c.member == member,
                    sa.or_(marks.c.last_active_at.is_(None), marks.c.last_active_at < at),
                )
                .returning(marks.c.user_id)
            )
        ).all()
        if deleted:
            await uow.record(
                MemberActive(community_id=community_id, user_id=deleted[0][0], active_at=at),
                subject=str(community_id),
            )
            announced += 1
    return announced


async def _mark(
    uow: UnitOfWork,
    *,
    policy: Policy,
    kind: str,
    candidates: list[tuple[int, uuid.UUID, datetime | None, datetime]],
    now: datetime,
) -> int:
    """Insert marks (the claim) and announce the ones this call inserted."""
    if not candidates:
        return 0
    session = uow.session
    marks = _t(InactivityMark)
    stmt = upsert_insert(session, marks).values(
        [
            {
                "community_id": policy.community_id,
                "member": n,
                "kind": kind,
                "user_id": user,
                "last_active_at": last,
                "marked_at": now,
            }
            for n, user, last, _ in candidates
        ]
    )
    stmt = stmt.on_conflict_do_nothing(index_elements=["community_id", "member", "kind"])
    claimed = set((await session.execute(stmt.returning(marks.c.member))).scalars())
    for n, user, last, since in candidates:
        if n in claimed:
            await uow.record(
                MemberInactive(
                    community_id=policy.community_id,
                    user_id=user,
                    kind=kind,  # type: ignore[arg-type]
                    last_active_at=last,
                    inactive_days=int((now - since).total_seconds() // 86400),
                    detected_at=now,
                ),
                subject=str(policy.community_id),
            )
    return len(claimed)


async def detect(
    uow: UnitOfWork, *, policy: Policy, settings: MetricsSettings, now: datetime
) -> int:
    """Announce the community's newly quiet members and quiet top contributors; commits."""
    session = uow.session
    states, marks, memberships = _t(MemberState), _t(InactivityMark), _t(Membership)
    since = sa.func.coalesce(states.c.last_active_at, states.c.joined_at)
    rows = (
        await session.execute(
            sa.select(
                states.c.member,
                states.c.user_id,
                states.c.last_active_at,
                since.label("since"),
                states.c.contributions,
                marks.c.kind,
            )
            .join(
                memberships,
                sa.and_(
                    memberships.c.community_id == states.c.community_id,
                    memberships.c.user_id == states.c.user_id,
                    memberships.c.status == "active",
                ),
            )
            .outerjoin(
                marks,
                sa.and_(
                    marks.c.community_id == states.c.community_id, marks.c.member == states.c.member
                ),
            )
            .where(states.c.community_id == policy.community_id, since.is_not(None))
        )
    ).all()
    marked: dict[int, set[str]] = {}
    info: dict[int, tuple[uuid.UUID, datetime | None, datetime, int]] = {}
    for n, user, last, quiet_since, contributions, kind in rows:
        marked.setdefault(n, set())
        if kind:
            marked[n].add(kind)
        info[n] = (user, last, quiet_since, contributions)
    cutoff = now - timedelta(days=policy.inactive_days)
    inactive = [
        (n, user, last, q)
        for n, (user, last, q, _) in info.items()
        if q <= cutoff and INACTIVE not in marked[n]
    ]
    # The top quartile of the community's contributors by contributions (ties: member number).
    contributors = sorted((-c, n) for n, (_, _, _, c) in info.items() if c > 0)
    top = {n for _, n in contributors[: (len(contributors) + 3) // 4]}
    lo = now - timedelta(days=settings.quiet_top_max_days)
    hi = now - timedelta(days=settings.quiet_top_min_days)
    going = {n for n, *_ in inactive}
    quiet_top = [
        (n, user, last, q)
        for n, (user, last, q, _) in info.items()
        if n in top and last is not None and lo <= last <= hi and not marked[n] and n not in going
    ]
    found = await _mark(uow, policy=policy, kind=INACTIVE, candidates=sorted(inactive), now=now)
    found += await _mark(uow, policy=policy, kind=QUIET_TOP, candidates=sorted(quiet_top), now=now)
    await uow.commit()
    return found


async def detect_all(uow: UnitOfWork, *, settings: MetricsSettings, now: datetime) -> int:
    """One detection pass over every known community; how many members were announced."""
    total = 0
    for policy in await policies(uow.session, settings=settings):
        total += await detect(uow, policy=policy, settings=settings, now=now)
    return total
