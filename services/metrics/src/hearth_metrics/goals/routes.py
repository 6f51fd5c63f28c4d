"""Goal progress over HTTP."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from hearth_metrics.communities.service import policy_of
from hearth_metrics.goals import service
from hearth_metrics.goals.models import CommunityGoals
from hearth_metrics.measures.access import people_floor
from hearth_metrics.permissions import require_reader
from hearth_metrics.privacy import Floor
from hearth_metrics.settings import MetricsSettings
from servicekit.deps import RuntimeDep, SessionDep
from servicekit.identity import CurrentPrincipal
from servicekit.runtime import settings_of

router = APIRouter(tags=["metrics"])


@router.get("/communities/{community_id}/goals/progress")
async def goal_progress(
    community_id: uuid.UUID, session: SessionDep, runtime: RuntimeDep, actor: CurrentPrincipal
) -> CommunityGoals:
    """The community's goals: target, current value of the metric, and share of the target."""
    await require_reader(session, actor, community_id, what="goals")
    settings = settings_of(runtime, MetricsSettings)
    policy = await policy_of(session, community_id=community_id, settings=settings)
    return await service.goal_progress(
        session, community_id=community_id, floor=people_floor(Floor.of(policy))
    )
