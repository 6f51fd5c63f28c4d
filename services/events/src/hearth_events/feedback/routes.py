"""Feedback routes: an attendee's own feedback, and the list for organisers and hosts."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from hearth_events.feedback import service
from hearth_events.feedback.models import FeedbackCreate, FeedbackPublic
from servicekit.deps import UnitOfWorkDep
from servicekit.identity import CurrentPrincipal
from servicekit.pagination import Page, PageDep, make_page

router = APIRouter(tags=["feedback"])


@router.put("/activities/{activity_id}/feedback/me", status_code=status.HTTP_201_CREATED)
async def submit_feedback(
    activity_id: uuid.UUID,
    body: FeedbackCreate,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
    response: Response,
) -> FeedbackPublic:
    """Send feedback on an ended activity one attended (201), or edit it within 7 days (200)."""
    row, created = await service.submit_feedback(
        uow=uow, activity_id=activity_id, data=body, actor=actor
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return service.public(row)


@router.get("/activities/{activity_id}/feedback/me")
async def my_feedback(
    activity_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> FeedbackPublic:
    """The caller's feedback on the activity."""
    return service.public(await service.my_feedback(uow=uow, activity_id=activity_id, actor=actor))


@router.get("/activities/{activity_id}/feedback")
async def list_feedback(
    activity_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal, page: PageDep
) -> Page[FeedbackPublic]:
    """Every attendee's feedback, oldest first (organisers and hosts)."""
    rows = await service.list_feedback(uow=uow, activity_id=activity_id, actor=actor, page=page)
    return make_page([service.public(r) for r in rows], page.limit, lambda f: [str(f.id)])
