"""Poll routes: open a poll, list and read them (with results when visible), vote, close."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from hearth_content.polls import service
from hearth_content.polls.models import PollCreate, PollPublic, VoteRequest
from servicekit.deps import UnitOfWorkDep
from servicekit.identity import CurrentPrincipal
from servicekit.pagination import Page, PageDep, make_page

router = APIRouter(tags=["polls"])


@router.post("/communities/{community_id}/polls", status_code=status.HTTP_201_CREATED)
async def create_poll(
    community_id: uuid.UUID, body: PollCreate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> PollPublic:
    """Open a poll (members who may write in the community)."""
    poll = await service.create_poll(uow=uow, community_id=community_id, data=body, actor=actor)
    return await service.public(uow=uow, poll=poll, actor=actor)


@router.get("/communities/{community_id}/polls")
async def list_polls(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal, page: PageDep
) -> Page[PollPublic]:
    """The community's polls, newest first (its members)."""
    rows = await service.list_polls(uow=uow, community_id=community_id, actor=actor, page=page)
    items = [await service.public(uow=uow, poll=p, actor=actor) for p in rows]
    return make_page(items, page.limit, lambda p: [str(p.id)])


@router.get("/polls/{poll_id}")
async def get_poll(poll_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal) -> PollPublic:
    """One poll, with its results when the caller may see them."""
    poll = await service.get_poll(uow=uow, poll_id=poll_id, actor=actor)
    return await service.public(uow=uow, poll=poll, actor=actor)


@router.put("/polls/{poll_id}/vote")
async def vote(
    poll_id: uuid.UUID, body: VoteRequest, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> PollPublic:
    """Vote (once; again only to change it, where the poll allows, until it closes)."""
    await service.vote(uow=uow, poll_id=poll_id, option_ids=body.option_ids, actor=actor)
    poll = await service.get_poll(uow=uow, poll_id=poll_id, actor=actor)
    return await service.public(uow=uow, poll=poll, actor=actor)


@router.post("/polls/{poll_id}/close")
async def close_poll(poll_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal) -> PollPublic:
    """Close a poll now (its author, the community's staff)."""
    poll = await service.close_poll(uow=uow, poll_id=poll_id, actor=actor)
    return await service.public(uow=uow, poll=poll, actor=actor)
