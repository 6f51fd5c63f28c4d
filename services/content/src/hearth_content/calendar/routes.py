"""Calendar routes: columns, tags, week/month views, the iCalendar feed, booking and unbooking."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status

from hearth_content.calendar import service
from hearth_content.calendar.cadence import slot_id
from hearth_content.calendar.models import Booking, ContentColumn
from hearth_content.calendar.schemas import (
    BookIn,
    BookingOut,
    CalendarView,
    ColumnIn,
    ColumnOut,
    ColumnUpdate,
    TagOut,
    _zone,
)
from servicekit.deps import UnitOfWorkDep
from servicekit.identity import CurrentPrincipal
from servicekit.problems import Problem
from servicekit.types import UtcDatetime

router = APIRouter(tags=["calendar"])


def _column(c: ContentColumn) -> ColumnOut:
    return ColumnOut.model_validate(c, from_attributes=True)


def _booking(b: Booking) -> BookingOut:
    return BookingOut(
        post_id=b.post_id,
        column_id=b.column_id,
        slot_id=slot_id(b.column_id, b.starts_at),
        starts_at=b.starts_at,
    )


def _tz(value: str) -> str:
    try:
        return _zone(value)
    except ValueError as exc:
        raise Problem(422, "bad-time-zone", "Unprocessable", str(exc)) from None


@router.post("/communities/{community_id}/columns", status_code=status.HTTP_201_CREATED)
async def create_column(
    community_id: uuid.UUID, body: ColumnIn, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> ColumnOut:
    """Create a column (固定栏目) with a cadence (owner, admins, platform staff)."""
    column = await service.create_column(uow=uow, community_id=community_id, data=body, actor=actor)
    return _column(column)


@router.patch("/columns/{column_id}")
async def update_column(
    column_id: uuid.UUID, body: ColumnUpdate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> ColumnOut:
    """Change a column (its owners, the community's staff, platform staff)."""
    column = await service.update_column(uow=uow, column_id=column_id, data=body, actor=actor)
    return _column(column)


@router.delete("/columns/{column_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_column(column_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal) -> None:
    """Delete a column with no planned post booked (409 names them otherwise)."""
    await service.delete_column(uow=uow, column_id=column_id, actor=actor)


@router.get("/communities/{community_id}/columns")
async def list_columns(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> list[ColumnOut]:
    """The community's columns (its members)."""
    rows = await service.list_columns(uow=uow, community_id=community_id, actor=actor)
    return [_column(c) for c in rows]


@router.get("/communities/{community_id}/tags")
async def list_tags(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> list[TagOut]:
    """The community's normalized tags (its members)."""
    rows = await service.list_tags(uow=uow, community_id=community_id, actor=actor)
    return [TagOut(slug=t.slug, label=t.label) for t in rows]


@router.get("/communities/{community_id}/calendar")
async def calendar_view(
    community_id: uuid.UUID,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
    view: Annotated[Literal["week", "month"], Query()] = "week",
    day: Annotated[date | None, Query(alias="date")] = None,
    tz: Annotated[str, Query(max_length=64)] = "UTC",
) -> CalendarView:
    """A week (Monday first) or month of planned slots, booked posts and gaps (planners)."""
    return await service.calendar_view(
        uow=uow, community_id=community_id, actor=actor, view=view, day=day, time_zone=_tz(tz)
    )


@router.get(
    "/communities/{community_id}/calendar.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}}},
)
async def calendar_ics(
    community_id: uuid.UUID,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
    start: Annotated[UtcDatetime | None, Query(alias="from")] = None,
    end: Annotated[UtcDatetime | None, Query(alias="to")] = None,
) -> Response:
    """The calendar as an iCalendar feed (default: a week back to 90 days ahead)."""
    body = await service.ical_feed(
        uow=uow, community_id=community_id, actor=actor, start=start, end=end
    )
    return Response(body, media_type="text/calendar; charset=utf-8")


@router.put("/posts/{post_id}/slot")
async def book(
    post_id: uuid.UUID, body: BookIn, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> BookingOut:
    """Book a post into a column's planned slot, or move it there (planners)."""
    booking = await service.book(
        uow=uow, post_id=post_id, column_id=body.column_id, starts_at=body.starts_at, actor=actor
    )
    return _booking(booking)


@router.delete("/posts/{post_id}/slot", status_code=status.HTTP_204_NO_CONTENT)
async def unbook(post_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal) -> None:
    """Take a post out of its slot (planners)."""
    await service.unbook(uow=uow, post_id=post_id, actor=actor)
