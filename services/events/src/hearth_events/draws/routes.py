"""Lucky draw routes: organisers run the draw, members read it and its proof."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from hearth_events.draws import service
from hearth_events.draws.models import (
    DrawCreate,
    DrawProof,
    DrawPublic,
    DrawUpdate,
    RedrawRequest,
)
from servicekit.deps import UnitOfWorkDep
from servicekit.identity import CurrentPrincipal

router = APIRouter(tags=["draws"])


@router.post("/activities/{activity_id}/draws", status_code=status.HTTP_201_CREATED)
async def create_draw(
    activity_id: uuid.UUID, body: DrawCreate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> DrawPublic:
    """A new draw with its prizes and eligibility rules (organisers)."""
    return await service.create_draw(uow, activity_id=activity_id, data=body, actor=actor)


@router.get("/activities/{activity_id}/draws")
async def list_draws(
    activity_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> list[DrawPublic]:
    """An activity's draws (the community's members)."""
    return await service.list_draws(uow, activity_id=activity_id, actor=actor)


@router.get("/draws/{draw_id}")
async def get_draw(draw_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal) -> DrawPublic:
    """One draw: prizes, commitment, list digest, seed once revealed, winners."""
    return await service.get_draw(uow, draw_id=draw_id, actor=actor)


@router.patch("/draws/{draw_id}")
async def update_draw(
    draw_id: uuid.UUID, body: DrawUpdate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> DrawPublic:
    """Change rules or prizes while the draw is open; 409 once committed (organisers)."""
    return await service.update_draw(uow, draw_id=draw_id, data=body, actor=actor)


@router.post("/draws/{draw_id}/commit")
async def commit_draw(
    draw_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> DrawPublic:
    """Freeze and publish the eligible list and a commitment to the secret seed (organisers)."""
    return await service.commit_draw(uow, draw_id=draw_id, actor=actor)


@router.post("/draws/{draw_id}/reveal")
async def reveal_draw(
    draw_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> DrawPublic:
    """Reveal the seed and announce the winners that follow from it (organisers)."""
    return await service.reveal_draw(uow, draw_id=draw_id, actor=actor)


@router.post("/draws/{draw_id}/redraws")
async def redraw(
    draw_id: uuid.UUID, body: RedrawRequest, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> DrawPublic:
    """Replace an absent winner from the same prize's stream (organisers)."""
    return await service.redraw(
        uow, draw_id=draw_id, registration_id=body.registration_id, actor=actor
    )


@router.post("/draws/{draw_id}/complete")
async def complete_draw(
    draw_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> DrawPublic:
    """Close the draw and announce the final winners (organisers)."""
    return await service.complete_draw(uow, draw_id=draw_id, actor=actor)


@router.get("/draws/{draw_id}/proof")
async def draw_proof(draw_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal) -> DrawProof:
    """The draw's proof: what `hearth-events verify-draw` reruns (the community's members)."""
    return await service.proof(uow, draw_id=draw_id, actor=actor)
