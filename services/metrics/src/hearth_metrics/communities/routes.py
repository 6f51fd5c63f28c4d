"""A community's metrics policy: time zone, inactivity threshold, privacy floor, publications."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from hearth_metrics.communities import service
from hearth_metrics.communities.models import CommunityPolicyPublic, CommunityPolicyUpdate
from hearth_metrics.permissions import require_manager, require_reader
from hearth_metrics.settings import MetricsSettings
from servicekit.deps import RuntimeDep, SessionDep, UnitOfWorkDep
from servicekit.identity import CurrentPrincipal
from servicekit.runtime import settings_of

router = APIRouter(tags=["metrics"])


@router.get("/communities/{community_id}/policy")
async def get_policy(
    community_id: uuid.UUID, session: SessionDep, runtime: RuntimeDep, actor: CurrentPrincipal
) -> CommunityPolicyPublic:
    """The community's effective metrics policy (owners, admins, staff, `metrics:read` keys)."""
    await require_reader(session, actor, community_id, what="policy")
    settings = settings_of(runtime, MetricsSettings)
    return await service.get_policy(session, community_id=community_id, settings=settings)


@router.patch("/communities/{community_id}/policy")
async def update_policy(
    community_id: uuid.UUID,
    body: CommunityPolicyUpdate,
    uow: UnitOfWorkDep,
    runtime: RuntimeDep,
    actor: CurrentPrincipal,
) -> CommunityPolicyPublic:
    """Change the community's metrics policy (owners, admins, platform staff)."""
    await require_manager(uow.session, actor, community_id)
    settings = settings_of(runtime, MetricsSettings)
    return await service.update_policy(
        uow, community_id=community_id, change=body, settings=settings
    )
