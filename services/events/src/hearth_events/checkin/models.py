"""Check-in (签到): who came, how, and an activity's check-in window and walk-in policy."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import String, UniqueConstraint
from sqlmodel import Field

from hearth_events.models import EventsModel
from servicekit.ids import utcnow, uuid7
from servicekit.types import UtcDateTime, UtcDatetime


class CheckInMethod(StrEnum):
    """How a person was checked in."""

    code = "code"  # a host scanned the registrant's signed code (QR)
    manual = "manual"  # a host picked the registrant by member id
    walk_in = "walk_in"  # no seat beforehand: a host seated them at the door


class CheckIn(EventsModel, table=True):
    """One person's attendance at one activity: at most one per registration, ever."""

    __tablename__ = "check_ins"
    __table_args__ = (
        # Checking in twice counts once, whatever the code above does.
        UniqueConstraint("registration_id", name="uq_check_in_registration"),
        UniqueConstraint("activity_id", "user_id", name="uq_check_in_person"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    activity_id: uuid.UUID = Field(foreign_key="activities.id")
    registration_id: uuid.UUID = Field(foreign_key="registrations.id")
    community_id: uuid.UUID
    user_id: uuid.UUID = Field(index=True)
    method: CheckInMethod = Field(sa_type=String(20))
    checked_in_by: uuid.UUID
    checked_in_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class NoShow(EventsModel, table=True):
    """A confirmed seat not checked in when the activity ended: recorded (and announced) once."""

    __tablename__ = "no_shows"
    __table_args__ = (UniqueConstraint("registration_id", name="uq_no_show_registration"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    activity_id: uuid.UUID = Field(foreign_key="activities.id", index=True)
    registration_id: uuid.UUID = Field(foreign_key="registrations.id")
    community_id: uuid.UUID
    user_id: uuid.UUID
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class CheckInPolicyBase(EventsModel):
    """An activity's check-in window (minutes around start and end) and walk-ins."""

    opens_minutes_before: int = Field(ge=0, le=7 * 24 * 60)
    closes_minutes_after: int = Field(ge=0, le=7 * 24 * 60)
    walk_ins: bool = False


class CheckInPolicy(CheckInPolicyBase, table=True):
    """An activity's own check-in policy; without a row the service's settings apply."""

    __tablename__ = "check_in_policies"

    activity_id: uuid.UUID = Field(foreign_key="activities.id", primary_key=True)
    updated_by: uuid.UUID
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class CheckInPolicyUpdate(EventsModel):
    """Body of PUT /activities/{id}/check-in-policy (fields left out keep their value)."""

    opens_minutes_before: int | None = Field(default=None, ge=0, le=7 * 24 * 60)
    closes_minutes_after: int | None = Field(default=None, ge=0, le=7 * 24 * 60)
    walk_ins: bool | None = None


class CheckInPolicyPublic(CheckInPolicyBase):
    """The check-in policy in force, with the window it gives."""

    activity_id: uuid.UUID
    opens_at: UtcDatetime
    closes_at: UtcDatetime


class CheckInRequest(EventsModel):
    """Body of POST /activities/{id}/check-ins: a scanned code, or a member checked in by hand.

    With `code`, `user_id` (optional) is who the host sees in front of them: a code of another
    person is refused. Without `code`, `user_id` is checked in manually (or as a walk-in).
    """

    code: str | None = Field(default=None, min_length=1, max_length=200)
    user_id: uuid.UUID | None = None
    walk_in: bool = False


class CheckInPublic(EventsModel):
    """A check-in as clients see it."""

    id: uuid.UUID
    activity_id: uuid.UUID
    registration_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    method: CheckInMethod
    checked_in_by: uuid.UUID
    checked_in_at: UtcDatetime


class CheckInCode(EventsModel):
    """The registrant's check-in code and where its QR images are."""

    activity_id: uuid.UUID
    registration_id: uuid.UUID
    code: str
    png_url: str
    svg_url: str
