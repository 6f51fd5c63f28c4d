"""Moderation's HTTP routes (served at /, public through the gateway at /api/moderation)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from hearth_moderation import service
from hearth_moderation.models import RuleSetVersionPublic, ScreeningDecision, ScreeningPublic
from hearth_moderation.rules import RuleSetDraft
from hearth_moderation.screening.behaviour import SampleAuthor
from hearth_moderation.settings import ModerationSettings, platform_rules
from servicekit.deps import RuntimeDep, UnitOfWorkDep
from servicekit.identity import CurrentPrincipal, StaffDep
from servicekit.pagination import Page, PageDep, make_page
from servicekit.runtime import settings_of
from servicekit.types import CleanInput

router = APIRouter(tags=["screenings"])
rules_router = APIRouter(tags=["rules"])


class RuleSetPublish(CleanInput):
    """A new version of a community's rule set."""

    model_config = ConfigDict(extra="forbid")

    rules: RuleSetDraft
    note: str | None = Field(default=None, max_length=500)


class DryRunRequest(CleanInput):
    """Sample text, screened against a draft rule set (or, without one, the current version)."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=20000)
    rules: RuleSetDraft | None = None
    # With a sample author, flood, duplicate and newcomer rules apply as they would to them.
    author: SampleAuthor | None = None


class DryRunHit(BaseModel):
    """One hit: which rule, where (offsets in the sample, end exclusive), and its action."""

    rule: str
    kind: str
    action: str
    start: int
    end: int
    text: str
    reason: str
    tag: str | None


class DryRunResult(BaseModel):
    """What screening would decide for the sample."""

    rule_set_version: int | None  # None: a draft was screened
    verdict: str
    hits: list[DryRunHit]
    tags: list[str]
    censored_text: str | None


# Screenings show matched terms and authors across communities: platform staff only for now.


@router.get("/screenings")
async def list_screenings(
    uow: UnitOfWorkDep,
    _: StaffDep,
    page: PageDep,
    community_id: Annotated[uuid.UUID | None, Query()] = None,
    decision: Annotated[ScreeningDecision | None, Query()] = None,
) -> Page[ScreeningPublic]:
    """Screenings, newest first (platform admins and operators)."""
    rows = await service.list_screenings(
        uow=uow, community_id=community_id, decision=decision, page=page
    )
    items = [ScreeningPublic.model_validate(s, from_attributes=True) for s in rows]
    return make_page(items, page.limit, lambda s: [str(s.id)])


@router.get("/screenings/{screening_id}")
async def get_screening(
    screening_id: uuid.UUID, uow: UnitOfWorkDep, _: StaffDep
) -> ScreeningPublic:
    """One screening (platform admins and operators)."""
    screening = await service.get_screening(uow=uow, screening_id=screening_id)
    return ScreeningPublic.model_validate(screening, from_attributes=True)


def _platform(runtime: RuntimeDep) -> RuleSetDraft:
    return platform_rules(settings_of(runtime, ModerationSettings).banned_terms)


@rules_router.get("/communities/{community_id}/rules")
async def get_rules(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> RuleSetVersionPublic:
    """The community's current rule set (its owner, admins, moderators; platform staff)."""
    current = await service.get_rule_set(uow=uow, community_id=community_id, actor=actor)
    return RuleSetVersionPublic.model_validate(current, from_attributes=True)


@rules_router.get("/communities/{community_id}/rules/versions")
async def list_rule_versions(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal, page: PageDep
) -> Page[RuleSetVersionPublic]:
    """Every version of the community's rule set, newest first."""
    rows = await service.list_rule_set_versions(
        uow=uow, community_id=community_id, actor=actor, page=page
    )
    items = [RuleSetVersionPublic.model_validate(r, from_attributes=True) for r in rows]
    return make_page(items, page.limit, lambda r: [str(r.id)])


@rules_router.put("/communities/{community_id}/rules", status_code=201)
async def publish_rules(
    community_id: uuid.UUID, body: RuleSetPublish, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> RuleSetVersionPublic:
    """Publish the rules as the community's next version (screening uses it from now on)."""
    version = await service.publish_rule_set(
        uow=uow, community_id=community_id, rules=body.rules, note=body.note, actor=actor
    )
    return RuleSetVersionPublic.model_validate(version, from_attributes=True)


@rules_router.post("/communities/{community_id}/rules/dry-run")
async def dry_run(
    community_id: uuid.UUID,
    body: DryRunRequest,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
    runtime: RuntimeDep,
) -> DryRunResult:
    """Screen sample text against a draft rule set and show each hit; nothing is stored."""
    version, result = await service.dry_run(
        uow=uow,
        community_id=community_id,
        text=body.text,
        rules=body.rules,
        platform=_platform(runtime),
        actor=actor,
        author=body.author,
    )
    return DryRunResult(
        rule_set_version=version,
        verdict=result.verdict,
        hits=[DryRunHit(**h.as_dict()) for h in result.hits],
        tags=result.tags,
        censored_text=result.censored,
    )
