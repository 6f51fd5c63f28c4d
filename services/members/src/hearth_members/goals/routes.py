"""Community goal routes."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from hearth_members.goals import service
from hearth_members.goals.models import GoalCreate, GoalPublic
from servicekit.deps import UnitOfWorkDep
from servicekit.identity import CurrentPrincipal

router = APIRouter(tags=["communities"])
C = "/communities/{community_id}"


@router.get(C + "/goals")
async def list_goals(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> list[GoalPublic]:
    """A community's goals with progress and status from metrics' latest measurements."""
    return await service.list_goals(uow=uow, community_id=community_id, actor=actor)


@router.post(C + "/goals", status_code=status.HTTP_201_CREATED)
async def create_goal(
    community_id: uuid.UUID, body: GoalCreate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> GoalPublic:
    """Add a goal on a metric of metrics' catalogue (owner, admin)."""
    return await service.create_goal(uow=uow, community_id=community_id, data=body, actor=actor)


@router.delete(C + "/goals/{goal_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_goal(
    community_id: uuid.UUID, goal_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> None:
    """Remove a goal (owner, admin)."""
    await service.delete_goal(uow=uow, community_id=community_id, goal_id=goal_id, actor=actor)
