"""Events of check-in: attendance facts (members turns them into points and standing)."""

from __future__ import annotations

import uuid
from datetime import datetime

from servicekit.events import Event, event_type


@event_type("events.attendance.checked_in.v1")
class AttendanceCheckedIn(Event):
    """A member checked in at an activity (by code, by hand or as a walk-in); once per person."""

    activity_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    checked_in_at: datetime
    registration_id: uuid.UUID | None = None
    method: str | None = None
    checked_in_by: uuid.UUID | None = None


@event_type("events.attendance.no_show.v1")
class AttendanceNoShow(Event):
    """A member with a confirmed seat did not check in before the activity ended; once each."""

    activity_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    activity_ended_at: datetime
    registration_id: uuid.UUID | None = None
