"""Goal use cases: create, list, measure, delete (keyword-only, over a uow)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_
from sqlmodel import col, select

from hearth_members.communities.service import acting_role, visible_community
from hearth_members.goals.events import GoalRemoved, GoalSet
from hearth_members.goals.models import (
    CommunityMeasurement,
    Goal,
    GoalCreate,
    GoalPublic,
    GoalStatus,
)
from hearth_members.permissions import Action
from servicekit.db import upsert_insert
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.problems import not_found


async def create_goal(
    *, uow: UnitOfWork, community_id: uuid.UUID, data: GoalCreate, actor: Principal
) -> GoalPublic:
    """Add a measurable goal on a catalogue metric (owner, admin)."""
    await acting_role(uow=uow, community_id=community_id, actor=actor, action=Action.manage_goals)
    goal = Goal(
        community_id=community_id,
        metric=data.metric,
        target=data.target,
        deadline=data.deadline,
        owner_id=data.owner_id or actor.subject,
    )
    uow.session.add(goal)
    await uow.record(
        GoalSet(
            goal_id=goal.id,
            community_id=community_id,
            metric=goal.metric,
            target=goal.target,
            deadline=goal.deadline,
            owner_id=goal.owner_id,
            set_at=goal.created_at,
        ),
        subject=str(community_id),
    )
    await uow.commit()
    measurement = await uow.session.get(CommunityMeasurement, (community_id, goal.metric))
    return goal_view(goal, measurement, today=utcnow().date())


async def list_goals(
    *, uow: UnitOfWork, community_id: uuid.UUID, actor: Principal
) -> list[GoalPublic]:
    """A visible community's goals, each with its latest measurement (one query)."""
    await visible_community(uow=uow, community_id=community_id, actor=actor)
    stmt = (
        select(Goal, CommunityMeasurement)
        .outerjoin(
            CommunityMeasurement,
            and_(
                col(CommunityMeasurement.community_id) == col(Goal.community_id),
                col(CommunityMeasurement.metric) == col(Goal.metric),
            ),
        )
        .where(Goal.community_id == community_id)
        .order_by(col(Goal.id))
    )
    today = utcnow().date()
    return [goal_view(g, m, today=today) for g, m in (await uow.session.exec(stmt)).all()]


async def record_measurement(
    *,
    uow: UnitOfWork,
    community_id: uuid.UUID,
    metric: str,
    value: float,
    measured_at: datetime,
) -> None:
    """Keep a community metric's measurement unless a newer one is stored already."""
    table: Any = CommunityMeasurement.__table__  # type: ignore[attr-defined]
    stmt = upsert_insert(uow.session, table).values(
        community_id=community_id, metric=metric, value=value, measured_at=measured_at
    )
    # One conditional statement: the relay promises order per aggregate only, and redelivery
    # after a failure can bring an old measurement back late; it must not replace a newer one
    # (an equal time keeps the stored row). Concurrent handlers cannot interleave a read and a
    # write here either.
    stmt = stmt.on_conflict_do_update(
        index_elements=["community_id", "metric"],
        set_={"value": stmt.excluded.value, "measured_at": stmt.excluded.measured_at},
        where=table.c.measured_at < stmt.excluded.measured_at,
    )
    await uow.session.execute(stmt)


def goal_view(goal: Goal, measurement: CommunityMeasurement | None, *, today: date) -> GoalPublic:
    """A goal with its current value, progress and status against the latest measurement."""
    view = GoalPublic.model_validate(goal, from_attributes=True)
    if measurement is None:
        return view  # no_data: metrics has not measured this metric here yet
    current = measurement.value
    if current >= goal.target:
        status = GoalStatus.achieved
    elif today > goal.deadline:  # the deadline day itself still counts
        status = GoalStatus.missed
    else:
        status = GoalStatus.on_track
    return view.model_copy(
        update={
            "current": current,
            "progress": current / goal.target,
            "measured_at": measurement.measured_at,
            "status": status,
        }
    )


async def delete_goal(
    *, uow: UnitOfWork, community_id: uuid.UUID, goal_id: uuid.UUID, actor: Principal
) -> None:
    """Remove a goal (owner, admin)."""
    await acting_role(uow=uow, community_id=community_id, actor=actor, action=Action.manage_goals)
    goal = await uow.session.get(Goal, goal_id)
    if goal is None or goal.community_id != community_id:
        raise not_found("goal", goal_id)
    await uow.session.delete(goal)
    await uow.record(
        GoalRemoved(goal_id=goal.id, community_id=community_id, removed_at=utcnow()),
        subject=str(community_id),
    )
    await uow.commit()
