"""Goal progress: each live goal of a community against its counter, through the floor."""

from __future__ import annotations

import uuid

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_metrics.counters.models import CommunityCounts, Counter
from hearth_metrics.goals.models import CommunityGoal, CommunityGoals, GoalProgress
from hearth_metrics.measures.access import PeopleFloor

PEOPLE = frozenset({Counter.joins.value, Counter.registrations.value})
"""Counters of people (joins, registrations): under the privacy floor where it applies."""


async def goal_progress(
    session: AsyncSession, *, community_id: uuid.UUID, floor: PeopleFloor
) -> CommunityGoals:
    """The community's goals (removed ones left out), each with current value and share."""
    rows = (
        await session.exec(
            select(CommunityGoal)
            .where(
                CommunityGoal.community_id == community_id,
                col(CommunityGoal.removed_at).is_(None),
                col(CommunityGoal.metric).is_not(None),
            )
            .order_by(col(CommunityGoal.goal_id))
        )
    ).all()
    counts = await session.get(CommunityCounts, community_id)
    out = []
    for goal in rows:
        if goal.metric is None or goal.target is None or goal.deadline is None:
            continue
        # A metric outside the counters (members' catalogue ahead of this one) has no value.
        value = getattr(counts, goal.metric, 0) if counts is not None else 0
        current: float | None = None if value is None else float(value)
        why = None
        if current is not None and goal.metric in PEOPLE:
            _, why = floor(int(current))
            if why is not None:
                current = None
        out.append(
            GoalProgress(
                goal_id=goal.goal_id,
                metric=goal.metric,
                target=goal.target,
                deadline=goal.deadline,
                current=current,
                share=None if current is None else round(current / goal.target, 6),
                achieved=None if current is None else current >= goal.target,
                suppressed=why,
            )
        )
    return CommunityGoals(community_id=community_id, goals=out)
