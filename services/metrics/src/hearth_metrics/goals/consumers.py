"""The `metrics__goals` consumer: members' goal facts into the goals read model."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_metrics.goals.models import CommunityGoal
from hearth_metrics.measures.rows import upsert_fact
from servicekit.consumer import EventConsumer
from servicekit.events import Envelope

goals = EventConsumer("metrics__goals")


class GoalSetFact(BaseModel):
    """hearth.members.goal.set.v1 (the fields metrics reads)."""

    model_config = ConfigDict(extra="ignore")

    goal_id: uuid.UUID
    community_id: uuid.UUID
    metric: str
    target: float
    deadline: date
    set_at: datetime


class GoalRemovedFact(BaseModel):
    """hearth.members.goal.removed.v1."""

    model_config = ConfigDict(extra="ignore")

    goal_id: uuid.UUID
    community_id: uuid.UUID
    removed_at: datetime


@goals.handles("hearth.members.goal.set.v1", payload=GoalSetFact)
async def on_goal_set(session: AsyncSession, envelope: Envelope, data: GoalSetFact) -> None:
    """Keep the goal (set once; a removal that arrived first keeps its time)."""
    await upsert_fact(
        session,
        CommunityGoal,
        key={"goal_id": data.goal_id},
        earliest={"set_at": data.set_at},
        fill={
            "community_id": data.community_id,
            "metric": data.metric[:120],
            "target": data.target,
            "deadline": data.deadline,
        },
    )


@goals.handles("hearth.members.goal.removed.v1", payload=GoalRemovedFact)
async def on_goal_removed(session: AsyncSession, envelope: Envelope, data: GoalRemovedFact) -> None:
    """Mark the goal removed, whether or not its setting arrived first."""
    await upsert_fact(
        session,
        CommunityGoal,
        key={"goal_id": data.goal_id},
        earliest={"removed_at": data.removed_at},
        fill={"community_id": data.community_id},
    )
