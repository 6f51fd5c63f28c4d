"""Series routes: create a recurring activity, read it, edit one or following occurrences."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from hearth_events.models import Activity, ActivityPublic
from hearth_events.series import service
from hearth_events.series.models import (
    ActivitySeries,
    OccurrenceEditRequest,
    SeriesCreate,
    SeriesPublic,
)
from servicekit.deps import UnitOfWorkDep
from servicekit.identity import CurrentPrincipal

router = APIRouter(tags=["series"])


def _public(series: ActivitySeries, occurrences: list[Activity]) -> SeriesPublic:
    return SeriesPublic.model_validate(
        series, from_attributes=True, update={"occurrences": [a.id for a in occurrences]}
    )


@router.post("/series", status_code=status.HTTP_201_CREATED)
async def create_series(
    body: SeriesCreate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> SeriesPublic:
    """Create a recurring activity (RRULE, WEEKLY or MONTHLY, with EXDATE exceptions)."""
    series, occurrences = await service.create_series(uow=uow, data=body, actor=actor)
    return _public(series, occurrences)


@router.get("/series/{series_id}")
async def get_series(
    series_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> SeriesPublic:
    """A series and its occurrences."""
    series, occurrences = await service.get_series(uow=uow, series_id=series_id, actor=actor)
    return _public(series, occurrences)


@router.patch("/series/{series_id}/occurrences/{activity_id}")
async def edit_occurrence(
    series_id: uuid.UUID,
    activity_id: uuid.UUID,
    body: OccurrenceEditRequest,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
) -> list[ActivityPublic]:
    """Edit one occurrence (`scope: this`) or it and every later one (`scope: following`)."""
    changed = await service.edit_occurrence(
        uow=uow, series_id=series_id, activity_id=activity_id, data=body, actor=actor
    )
    return [ActivityPublic.model_validate(a, from_attributes=True) for a in changed]
