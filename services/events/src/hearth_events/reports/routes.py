"""Summary report routes: the figures (JSON) and the attendee list (CSV, streamed)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from fastapi.responses import Response, StreamingResponse

from hearth_events.reports import service
from hearth_events.reports.models import ActivitySummary
from servicekit.deps import RuntimeDep, UnitOfWorkDep
from servicekit.identity import CurrentPrincipal

router = APIRouter(tags=["reports"])


@router.get("/activities/{activity_id}/summary")
async def summary(
    activity_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> ActivitySummary:
    """The activity's summary report (organisers and hosts)."""
    return await service.summary(uow=uow, activity_id=activity_id, actor=actor)


@router.get(
    "/activities/{activity_id}/summary.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def summary_csv(
    activity_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> Response:
    """The summary report as CSV, one `metric,value` row per figure (organisers and hosts)."""
    report = await service.summary(uow=uow, activity_id=activity_id, actor=actor)
    return Response(
        service.summary_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="summary-{activity_id}.csv"'},
    )


@router.get(
    "/activities/{activity_id}/attendees.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
async def attendees_csv(
    activity_id: uuid.UUID, uow: UnitOfWorkDep, runtime: RuntimeDep, actor: CurrentPrincipal
) -> StreamingResponse:
    """The attendee list as CSV; who registered and their answers only for hosts."""
    with_pii = await service.attendee_export(uow=uow, activity_id=activity_id, actor=actor)
    return StreamingResponse(
        service.attendee_csv(runtime.db, activity_id, with_pii=with_pii),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="attendees-{activity_id}.csv"'},
    )
