"""Feedback use cases: attendees send it once and may edit it for EDIT_WINDOW."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from hearth_events.attendance import AFTER, is_attendee
from hearth_events.feedback.events import FeedbackSubmitted
from hearth_events.feedback.models import Feedback, FeedbackCreate, FeedbackPublic
from hearth_events.models import Activity
from hearth_events.service import require_manager
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.pagination import PageParams, after_id
from servicekit.problems import conflict, forbidden, not_found
from servicekit.types import as_utc

# How long after it is first sent feedback may still be changed.
EDIT_WINDOW = timedelta(days=7)


def public(row: Feedback) -> FeedbackPublic:
    """The client's view of a feedback row, with when it stops being editable."""
    return FeedbackPublic.model_validate(
        row, from_attributes=True, update={"editable_until": editable_until(row)}
    )


def editable_until(row: Feedback) -> datetime:
    """The end of the row's edit window."""
    return as_utc(row.submitted_at) + EDIT_WINDOW


async def submit_feedback(
    *, uow: UnitOfWork, activity_id: uuid.UUID, data: FeedbackCreate, actor: Principal
) -> tuple[Feedback, bool]:
    """Send or edit the caller's feedback on an ended activity they attended (True: new)."""
    activity = await _activity(uow, activity_id)
    if activity.state not in AFTER:
        raise conflict(
            "feedback-not-open", f"feedback opens when the activity has ended ({activity.state})"
        )
    if not await is_attendee(uow.session, activity, actor.subject):
        raise forbidden("only attendees of the activity may give feedback")
    for _attempt in range(2):
        row = await _mine(uow, activity_id, actor.subject)
        now = utcnow()
        created = row is None
        if row is None:
            row = Feedback(
                activity_id=activity_id,
                community_id=activity.community_id,
                user_id=actor.subject,
                satisfaction=data.satisfaction,
                nps=data.nps,
                submitted_at=now,
            )
        elif now > editable_until(row):
            raise conflict(
                "feedback-locked",
                "feedback can only be changed for 7 days after it was sent",
                editable_until=editable_until(row).isoformat(),
            )
        row.satisfaction, row.nps, row.comment, row.updated_at = (
            data.satisfaction,
            data.nps,
            data.comment,
            now,
        )
        uow.session.add(row)
        try:
            await uow.session.flush()
        except IntegrityError:
            # The same attendee sent feedback twice at once: the other insert won; edit it.
            await uow.session.rollback()
            continue
        await uow.record(
            FeedbackSubmitted(
                feedback_id=row.id,
                activity_id=activity_id,
                community_id=activity.community_id,
                user_id=actor.subject,
                satisfaction=row.satisfaction,
                nps=row.nps,
                has_comment=bool(row.comment),
                edited=not created,
                submitted_at=now,
            ),
            subject=str(activity_id),
        )
        await uow.commit()
        return row, created
    raise conflict("feedback-conflict", "feedback was sent concurrently; try again")


async def my_feedback(*, uow: UnitOfWork, activity_id: uuid.UUID, actor: Principal) -> Feedback:
    """The caller's own feedback on an activity."""
    row = await _mine(uow, activity_id, actor.subject)
    if row is None:
        raise not_found("feedback")
    return row


async def list_feedback(
    *, uow: UnitOfWork, activity_id: uuid.UUID, actor: Principal, page: PageParams
) -> list[Feedback]:
    """An activity's feedback, oldest first (limit+1 rows; organisers and hosts)."""
    activity = await _activity(uow, activity_id)
    await require_manager(uow.session, activity, actor)
    stmt = select(Feedback).where(Feedback.activity_id == activity_id)
    if page.after:
        stmt = stmt.where(col(Feedback.id) > after_id(page))
    return list(
        (await uow.session.exec(stmt.order_by(col(Feedback.id)).limit(page.limit + 1))).all()
    )


async def _activity(uow: UnitOfWork, activity_id: uuid.UUID) -> Activity:
    activity = await uow.session.get(Activity, activity_id)
    if activity is None:
        raise not_found("activity", activity_id)
    return activity


async def _mine(uow: UnitOfWork, activity_id: uuid.UUID, user_id: uuid.UUID) -> Feedback | None:
    stmt = select(Feedback).where(Feedback.activity_id == activity_id, Feedback.user_id == user_id)
    return (await uow.session.exec(stmt.execution_options(populate_existing=True))).first()
