"""Suggestion box routes: ideas, votes, the status workflow, official replies."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from hearth_content.suggestions import service
from hearth_content.suggestions.models import (
    StatusChangeRequest,
    Suggestion,
    SuggestionCreate,
    SuggestionPublic,
    SuggestionReplyCreate,
    SuggestionReplyPublic,
    SuggestionStatus,
)
from servicekit.deps import UnitOfWorkDep
from servicekit.identity import CurrentPrincipal
from servicekit.pagination import Page, PageDep, make_page

router = APIRouter(tags=["suggestions"])


def _public(suggestion: Suggestion, voted: bool) -> SuggestionPublic:
    public = SuggestionPublic.model_validate(suggestion, from_attributes=True)
    return public.model_copy(update={"voted": voted})


@router.post("/communities/{community_id}/suggestions", status_code=status.HTTP_201_CREATED)
async def create_suggestion(
    community_id: uuid.UUID, body: SuggestionCreate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> SuggestionPublic:
    """Put an idea in the suggestion box (active, unmuted members)."""
    suggestion = await service.create_suggestion(
        uow=uow, community_id=community_id, data=body, actor=actor
    )
    return _public(suggestion, False)


@router.get("/communities/{community_id}/suggestions")
async def list_suggestions(
    community_id: uuid.UUID,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
    page: PageDep,
    status: Annotated[SuggestionStatus | None, Query()] = None,
) -> Page[SuggestionPublic]:
    """A community's ideas, newest first, optionally of one status."""
    rows = await service.list_suggestions(
        uow=uow, community_id=community_id, actor=actor, status=status, page=page
    )
    mine = await service.voted_by(uow, suggestion_ids=[s.id for s in rows], voter=actor.subject)
    items = [_public(s, s.id in mine) for s in rows]
    return make_page(items, page.limit, lambda s: [str(s.id)])


@router.get("/suggestions/{suggestion_id}")
async def get_suggestion(
    suggestion_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> SuggestionPublic:
    """One idea the caller may read."""
    suggestion = await service.get_suggestion(uow=uow, suggestion_id=suggestion_id, actor=actor)
    mine = await service.voted_by(uow, suggestion_ids=[suggestion.id], voter=actor.subject)
    return _public(suggestion, suggestion.id in mine)


@router.put("/suggestions/{suggestion_id}/votes/me")
async def vote(
    suggestion_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> SuggestionPublic:
    """Vote for an idea (idempotent: one vote per member)."""
    suggestion = await service.vote(uow=uow, suggestion_id=suggestion_id, voted=True, actor=actor)
    return _public(suggestion, True)


@router.delete("/suggestions/{suggestion_id}/votes/me")
async def unvote(
    suggestion_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> SuggestionPublic:
    """Take one's vote back (idempotent)."""
    suggestion = await service.vote(uow=uow, suggestion_id=suggestion_id, voted=False, actor=actor)
    return _public(suggestion, False)


@router.post("/suggestions/{suggestion_id}/status")
async def change_status(
    suggestion_id: uuid.UUID,
    body: StatusChangeRequest,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
) -> SuggestionPublic:
    """Move an idea along its workflow (the community's team); 409 names the allowed moves."""
    suggestion = await service.change_status(
        uow=uow, suggestion_id=suggestion_id, data=body, actor=actor
    )
    mine = await service.voted_by(uow, suggestion_ids=[suggestion.id], voter=actor.subject)
    return _public(suggestion, suggestion.id in mine)


@router.post("/suggestions/{suggestion_id}/replies", status_code=status.HTTP_201_CREATED)
async def reply(
    suggestion_id: uuid.UUID,
    body: SuggestionReplyCreate,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
) -> SuggestionReplyPublic:
    """Reply officially to an idea (the community's team)."""
    answer = await service.reply(uow=uow, suggestion_id=suggestion_id, body=body.body, actor=actor)
    return SuggestionReplyPublic.model_validate(answer, from_attributes=True)


@router.get("/suggestions/{suggestion_id}/replies")
async def list_replies(
    suggestion_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> list[SuggestionReplyPublic]:
    """An idea's official replies, oldest first."""
    rows = await service.list_replies(uow=uow, suggestion_id=suggestion_id, actor=actor)
    return [SuggestionReplyPublic.model_validate(r, from_attributes=True) for r in rows]
