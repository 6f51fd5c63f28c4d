"""Who attended an activity: the one place feedback and reports ask.

Attendance is what check-in recorded (checkin/): a check-in row is an attendee, a `no_shows`
row (written when the activity ends) a no-show.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_events.checkin.models import CheckIn, NoShow
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
    """Whether this person was checked in at an activity that has ended."""
    if activity.state not in AFTER:
        return False
    stmt = select(CheckIn.id).where(
        col(CheckIn.activity_id) == activity.id, col(CheckIn.user_id) == user_id
    )
    return (await session.exec(stmt)).first() is not None


async def attendance(session: AsyncSession, activity: Activity) -> Attendance:
    """Confirmed seats, people checked in, and no-shows recorded at the end."""

    async def count(stmt: object) -> int:
        return int((await session.exec(stmt)).one())  # type: ignore[call-overload]

    confirmed = await count(
        select(func.count()).where(
            col(Registration.activity_id) == activity.id,
            col(Registration.status) == RegistrationStatus.confirmed,
        )
    )
    attended = await count(select(func.count()).where(col(CheckIn.activity_id) == activity.id))
    no_shows = await count(select(func.count()).where(col(NoShow.activity_id) == activity.id))
    return Attendance(confirmed=confirmed, attended=attended, no_shows=no_shows)
