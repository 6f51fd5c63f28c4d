"""Queue routes: list with filters and SLA age, claim, assign, decide, bulk decisions."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from hearth_moderation.queue import service
from hearth_moderation.queue.models import (
    AssignRequest,
    BulkDecisionRequest,
    BulkDecisionResult,
    DecisionRequest,
    EntryKind,
    EntryStatus,
    QueueEntryPublic,
)
from servicekit.deps import UnitOfWorkDep
from servicekit.identity import CurrentPrincipal
from servicekit.pagination import Page, PageDep, make_page

router = APIRouter(tags=["queue"])


@router.get("/communities/{community_id}/queue")
async def list_queue(
    community_id: uuid.UUID,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
    page: PageDep,
    kind: Annotated[EntryKind | None, Query()] = None,
    status: Annotated[EntryStatus | None, Query()] = EntryStatus.open,
    assignee_id: Annotated[uuid.UUID | None, Query()] = None,
    unassigned: Annotated[bool, Query()] = False,
    overdue: Annotated[bool, Query()] = False,
) -> Page[QueueEntryPublic]:
    """The community's queue, oldest first: held items, reports, appeals (the team, staff)."""
    rows = await service.list_entries(
        uow=uow,
        community_id=community_id,
        kind=kind,
        status=status,
        assignee_id=assignee_id,
        unassigned=unassigned,
        overdue=overdue,
        page=page,
        actor=actor,
    )
    return make_page([service.public(e) for e in rows], page.limit, lambda e: [str(e.id)])


@router.get("/queue/{entry_id}")
async def get_entry(
    entry_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> QueueEntryPublic:
    """One entry, with the score's make-up for reports."""
    return service.public(await service.get_entry(uow=uow, entry_id=entry_id, actor=actor))


@router.post("/queue/{entry_id}/claim")
async def claim(
    entry_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> QueueEntryPublic:
    """Take an entry (409 if another moderator holds it)."""
    return service.public(await service.claim(uow=uow, entry_id=entry_id, actor=actor))


@router.post("/queue/{entry_id}/assign")
async def assign(
    entry_id: uuid.UUID, body: AssignRequest, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> QueueEntryPublic:
    """Give an entry to a moderator of the community, or back to the pool."""
    entry = await service.assign(
        uow=uow, entry_id=entry_id, assignee_id=body.assignee_id, actor=actor
    )
    return service.public(entry)


@router.post("/queue/{entry_id}/decision")
async def decide(
    entry_id: uuid.UUID, body: DecisionRequest, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> QueueEntryPublic:
    """Decide an entry: uphold or dismiss, a note, the reason the author sees, a sanction."""
    entry = await service.decide(uow=uow, entry_id=entry_id, data=body, actor=actor)
    return service.public(entry)


@router.post("/communities/{community_id}/queue/decisions")
async def bulk_decide(
    community_id: uuid.UUID,
    body: BulkDecisionRequest,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
) -> BulkDecisionResult:
    """One decision for many entries; each is decided or reported as failed."""
    return await service.bulk_decide(uow=uow, community_id=community_id, data=body, actor=actor)
