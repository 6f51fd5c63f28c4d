"""Who attended an activity: the one place feedback and reports ask (a hook for check-in).

Check-in (checkin/, built in parallel) records who actually came. Until it is merged this
module answers from registrations alone: a confirmed seat at an activity that has ended counts
as attended, and nobody is a no-show. When check-in lands, replace the bodies of
`is_attendee` and `attendance` with reads of its table; callers do not change.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_events.models import Activity, ActivityState, Registration, RegistrationStatus

# States after the activity took place: attendance is final, feedback is open.
AFTER = frozenset({ActivityState.ended, ActivityState.summarized})


@dataclass(frozen=True)
class Attendance:
    """An activity's attendance figures."""

    confirmed: int
    attended: int
    no_shows: int


async def is_attendee(session: AsyncSession, activity: Activity, user_id: uuid.UUID) -> bool:
    """Whether this person attended (today: held a confirmed seat at an ended activity)."""
    if activity.state not in AFTER:
        return False
    stmt = select(Registration.id).where(
        Registration.activity_id == activity.id,
        Registration.user_id == user_id,
        col(Registration.status) == RegistrationStatus.confirmed,
    )
    return (await session.exec(stmt)).first() is not None


async def attendance(session: AsyncSession, activity: Activity) -> Attendance:
    """Confirmed seats, attendees and no-shows (no-shows: 0 until check-in is merged)."""
    stmt = select(func.count()).where(
        col(Registration.activity_id) == activity.id,
        col(Registration.status) == RegistrationStatus.confirmed,
    )
    confirmed = (await session.exec(stmt)).one()
    attended = confirmed if activity.state in AFTER else 0
    return Attendance(confirmed=confirmed, attended=attended, no_shows=0)
