"""Appeal routes: appeal a sanction or a decision, read and talk, decide."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from hearth_moderation.appeals import service
from hearth_moderation.appeals.models import (
    Appeal,
    AppealCreate,
    AppealDecisionRequest,
    AppealMessage,
    AppealMessageCreate,
    AppealMessagePublic,
    AppealPublic,
)
from servicekit.deps import UnitOfWorkDep
from servicekit.identity import CurrentPrincipal

router = APIRouter(tags=["appeals"])


def _public(appeal: Appeal, messages: list[AppealMessage] | None = None) -> AppealPublic:
    out = AppealPublic.model_validate(appeal, from_attributes=True)
    out.messages = [
        AppealMessagePublic.model_validate(m, from_attributes=True) for m in messages or []
    ]
    return out


@router.post("/sanctions/{sanction_id}/appeals", status_code=201)
async def appeal_sanction(
    sanction_id: uuid.UUID, body: AppealCreate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> AppealPublic:
    """Appeal your sanction (once)."""
    appeal = await service.appeal_sanction(uow=uow, sanction_id=sanction_id, data=body, actor=actor)
    return _public(appeal)


@router.post("/queue/{entry_id}/appeals", status_code=201)
async def appeal_decision(
    entry_id: uuid.UUID, body: AppealCreate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> AppealPublic:
    """Appeal a moderator's decision against your item (once)."""
    appeal = await service.appeal_decision(uow=uow, entry_id=entry_id, data=body, actor=actor)
    return _public(appeal)


@router.get("/appeals/{appeal_id}")
async def get_appeal(
    appeal_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> AppealPublic:
    """An appeal with its dialogue (the appellant, the community's team, staff)."""
    appeal, messages = await service.get_appeal(uow=uow, appeal_id=appeal_id, actor=actor)
    return _public(appeal, messages)


@router.post("/appeals/{appeal_id}/messages", status_code=201)
async def post_message(
    appeal_id: uuid.UUID, body: AppealMessageCreate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> AppealMessagePublic:
    """Write in an open appeal's dialogue."""
    message = await service.post_message(uow=uow, appeal_id=appeal_id, data=body, actor=actor)
    return AppealMessagePublic.model_validate(message, from_attributes=True)


@router.post("/appeals/{appeal_id}/decision")
async def decide(
    appeal_id: uuid.UUID,
    body: AppealDecisionRequest,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
) -> AppealPublic:
    """Decide an appeal (a moderator other than the one who acted; 403 otherwise)."""
    appeal = await service.decide(uow=uow, appeal_id=appeal_id, data=body, actor=actor)
    return _public(appeal)
