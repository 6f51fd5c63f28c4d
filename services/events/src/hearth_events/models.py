"""Events' tables: activities, registrations and a read model of memberships (plus the kernel's)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import AnyHttpUrl, TypeAdapter, field_validator, model_validator
from sqlalchemy import CheckConstraint, Index, String, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from servicekit.ids import utcnow, uuid7
from servicekit.tables import KitTables
from servicekit.types import CleanInput, UtcDateTime, UtcDatetime, as_utc


class EventsModel(SQLModel, CleanInput, registry=registry()):
    """Base of events' tables: its own metadata, because events owns its own database."""


metadata = EventsModel.metadata
kit = KitTables(metadata)

_HTTP_URL: TypeAdapter[AnyHttpUrl] = TypeAdapter(AnyHttpUrl)


class ActivityKind(StrEnum):
    """What sort of activity (活动类型)."""

    lecture = "lecture"  # 线上讲座
    meetup = "meetup"  # 线下聚会
    quiz = "quiz"  # 知识竞赛
    product_trial = "product_trial"  # 产品体验
    ideas = "ideas"  # 创意征集
    other = "other"


class ActivityState(StrEnum):
    """An activity's lifecycle state (筹备 → 宣传 → 执行 → 总结); see lifecycle.py."""

    draft = "draft"
    published = "published"
    registration_closed = "registration_closed"
    ongoing = "ongoing"
    ended = "ended"
    summarized = "summarized"
    cancelled = "cancelled"


class RegistrationStatus(StrEnum):
    """Where a registration stands: a seat, a place in the FIFO waitlist, or given up."""

    confirmed = "confirmed"
    waitlisted = "waitlisted"
    cancelled = "cancelled"


class CommunityMembership(EventsModel, table=True):
    """Read model of members' memberships, fed by members' snapshots (never by its database)."""

    __tablename__ = "memberships"

    community_id: uuid.UUID = Field(primary_key=True)
    user_id: uuid.UUID = Field(primary_key=True, index=True)
    # Every column comes from members' membership snapshot (the whole state, replaced at once).
    membership_id: uuid.UUID | None = None
    # Plain strings, not enums: members owns these vocabularies and may grow them.
    role: str | None = Field(default=None, max_length=40)
    status: str | None = Field(default=None, max_length=40)
    joined_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # Muted members may not register, ask or vote (checkin/access.py); the tier decides draws.
    muted_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    tier: str | None = Field(default=None, max_length=40)
    # The snapshot's version: only a newer snapshot replaces the row (servicekit.readmodel).
    version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ActivityBase(EventsModel):
    """Fields a client may set when publishing an activity."""

    community_id: uuid.UUID
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    kind: ActivityKind
    starts_at: datetime = Field(sa_type=UtcDateTime)
    ends_at: datetime = Field(sa_type=UtcDateTime)
    capacity: int = Field(ge=1, le=100_000)
    location: str | None = Field(default=None, max_length=300)
    online_url: str | None = Field(default=None, max_length=2000)

    @field_validator("title")
    @classmethod
    def _strip_title(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("title must not be blank")
        return value


class ActivityCreate(ActivityBase):
    """Body of POST /activities (`draft: true` keeps it unpublished until a transition)."""

    draft: bool = False

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must carry a UTC offset (RFC 3339)")
        return as_utc(value)  # a ValueError (422) when out of range in UTC, not OverflowError

    @field_validator("online_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return str(_HTTP_URL.validate_python(value))

    @model_validator(mode="after")
    def _ends_after_start(self) -> ActivityCreate:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class Activity(ActivityBase, table=True):
    """An activity (活动) published in a community, with a seat counter kept in step."""

    __tablename__ = "activities"
    __table_args__ = (
        # The last line of defence against overbooking, whatever the code above it does.
        CheckConstraint("seats_taken >= 0 AND seats_taken <= capacity", name="ck_activity_seats"),
        Index("ix_activities_community_start", "community_id", "starts_at", "id"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    # A string column, not a database enum, so the lifecycle can grow without a type change.
    state: ActivityState = Field(
        default=ActivityState.published,
        sa_type=String(30),
        sa_column_kwargs={"server_default": "published"},
    )
    seats_taken: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # Registrations ever queued: each new one takes the next number, under the activity's row
    # lock, so the waitlist's first-come order is exact even under contention.
    queue_length: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    created_by: uuid.UUID
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ActivityPublic(EventsModel):
    """An activity as clients see it."""

    id: uuid.UUID
    community_id: uuid.UUID
    title: str
    description: str
    kind: ActivityKind
    starts_at: UtcDatetime
    ends_at: UtcDatetime
    capacity: int
    seats_taken: int
    state: ActivityState
    location: str | None
    online_url: str | None
    created_by: uuid.UUID
    created_at: UtcDatetime


class Registration(EventsModel, table=True):
    """One person's registration (报名) for one activity; at most one per person."""

    __tablename__ = "registrations"
    __table_args__ = (
        UniqueConstraint("activity_id", "user_id", name="uq_registration"),
        # The reminder scheduler's scan: confirmed seats not yet reminded.
        Index("ix_registrations_unreminded", "status", "reminded_at"),
        # The waitlist's head: the earliest waitlisted registration of an activity.
        Index("ix_registrations_queue", "activity_id", "status", "position"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    activity_id: uuid.UUID = Field(foreign_key="activities.id")  # indexed by uq_registration
    community_id: uuid.UUID
    user_id: uuid.UUID = Field(index=True)
    # A string column, not a database enum, so the waitlist can add states without a type change.
    status: RegistrationStatus = Field(default=RegistrationStatus.confirmed, sa_type=String(20))
    registered_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    # First-come order among the activity's registrations (from Activity.queue_length).
    position: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # When the reminder scheduler dealt with this seat (reminded, or passed over because the
    # person had left the community): set once, so a reminder never goes out twice.
    reminded_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class RegistrationPublic(EventsModel):
    """A registration as clients see it."""

    id: uuid.UUID
    activity_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    status: RegistrationStatus
    position: int
    registered_at: UtcDatetime


class TransitionRequest(EventsModel):
    """Body of POST /activities/{id}/transitions: the state to move to."""

    to: ActivityState


class CapacityChange(EventsModel):
    """Body of PUT /activities/{id}/capacity."""

    capacity: int = Field(ge=1, le=100_000)
