"""Evidence's routes, for the community's owner, admins and moderators (and platform staff)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal, cast

from fastapi import APIRouter, Query, Request

from hearth_moderation import service as moderation
from hearth_moderation.evidence import service
from hearth_moderation.evidence.models import (
    CaseExport,
    EvidencePublic,
    LegalHoldCreate,
    LegalHoldPublic,
    RetentionPublic,
    RetentionUpdate,
)
from hearth_moderation.settings import ModerationSettings
from servicekit.deps import UnitOfWorkDep
from servicekit.identity import CurrentPrincipal
from servicekit.pagination import Page, PageDep, make_page

router = APIRouter(tags=["evidence"])


def _settings(request: Request) -> ModerationSettings:
    return cast(ModerationSettings, request.app.state.settings)


@router.get("/communities/{community_id}/evidence")
async def list_evidence(
    community_id: uuid.UUID,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
    page: PageDep,
    item_type: Annotated[Literal["post", "comment"] | None, Query()] = None,
    item_id: Annotated[uuid.UUID | None, Query()] = None,
) -> Page[EvidencePublic]:
    """The community's evidence, newest first (optionally of one item)."""
    await moderation.require_rule_manager(uow=uow, community_id=community_id, actor=actor)
    rows = await service.list_evidence(
        uow.session, community_id=community_id, page=page, item_type=item_type, item_id=item_id
    )
    return make_page([service.public(e) for e in rows], page.limit, lambda e: [str(e.id)])


@router.get("/communities/{community_id}/evidence/retention")
async def get_retention(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal, request: Request
) -> RetentionPublic:
    """How many days the community keeps evidence."""
    await moderation.require_rule_manager(uow=uow, community_id=community_id, actor=actor)
    return await service.retention_of(
        uow.session,
        community_id=community_id,
        default_days=_settings(request).evidence_retention_days,
    )


@router.put("/communities/{community_id}/evidence/retention")
async def set_retention(
    community_id: uuid.UUID, body: RetentionUpdate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> RetentionPublic:
    """Set how many days the community keeps evidence (legal holds still suspend deletion)."""
    await moderation.require_rule_manager(uow=uow, community_id=community_id, actor=actor)
    return await service.set_retention(uow, community_id=community_id, days=body.days, actor=actor)


@router.get("/communities/{community_id}/legal-holds")
async def list_legal_holds(
    community_id: uuid.UUID,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
    active: Annotated[bool, Query()] = False,
) -> list[LegalHoldPublic]:
    """The community's legal holds, newest first (`active=true`: unreleased only)."""
    await moderation.require_rule_manager(uow=uow, community_id=community_id, actor=actor)
    holds = await service.list_holds(uow.session, community_id=community_id, active_only=active)
    return [LegalHoldPublic.model_validate(h, from_attributes=True) for h in holds]


@router.post("/communities/{community_id}/legal-holds", status_code=201)
async def place_legal_hold(
    community_id: uuid.UUID, body: LegalHoldCreate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> LegalHoldPublic:
    """Suspend evidence deletion for one item, or for the whole community."""
    await moderation.require_rule_manager(uow=uow, community_id=community_id, actor=actor)
    hold = await service.place_hold(uow, community_id=community_id, body=body, actor=actor)
    return LegalHoldPublic.model_validate(hold, from_attributes=True)


@router.post("/communities/{community_id}/legal-holds/{hold_id}/release")
async def release_legal_hold(
    community_id: uuid.UUID, hold_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> LegalHoldPublic:
    """Release a legal hold (idempotent)."""
    await moderation.require_rule_manager(uow=uow, community_id=community_id, actor=actor)
    hold = await service.release_hold(uow, community_id=community_id, hold_id=hold_id, actor=actor)
    return LegalHoldPublic.model_validate(hold, from_attributes=True)


@router.post("/communities/{community_id}/cases/{item_type}/{item_id}/export")
async def export_case(
    community_id: uuid.UUID,
    item_type: Literal["post", "comment"],
    item_id: uuid.UUID,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
    request: Request,
) -> CaseExport:
    """The item's case (item, evidence, audit records, holds, and every registered section) as
    one bundle with a detached Ed25519 signature."""
    await moderation.require_rule_manager(uow=uow, community_id=community_id, actor=actor)
    key = _settings(request).evidence_signing_key
    return await service.export_case(
        uow,
        community_id=community_id,
        item_type=item_type,
        item_id=item_id,
        actor=actor,
        signing_key=key.get_secret_value() if key is not None else None,
    )
