"""Events' tables: activities, registrations and a read model of memberships (plus the kernel's)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AnyHttpUrl,
    TypeAdapter,
    computed_field,
    field_validator,
    model_validator,
)
from sqlalchemy import JSON, CheckConstraint, Column, Index, String, Text, UniqueConstraint
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

    online_lecture = "online_lecture"  # 线上讲座
    offline_meetup = "offline_meetup"  # 线下聚会
    knowledge_contest = "knowledge_contest"  # 知识竞赛
    product_trial = "product_trial"  # 产品体验
    idea_contest = "idea_contest"  # 创意征集
    other = "other"


# The first names of the kinds, still accepted on input (stored and published as the new ones).
KIND_ALIASES = {
    "lecture": "online_lecture",
    "meetup": "offline_meetup",
    "quiz": "knowledge_contest",
    "ideas": "idea_contest",
}

# An activity's goal names one of metrics' catalogue metrics
# (hearth_metrics.counters.events.MetricName; a test keeps the two lists equal: this service
# never imports metrics at run time).
GoalMetric = Literal["joins", "posts_submitted", "posts_published", "registrations"]


class Visibility(StrEnum):
    """Who sees and may register: the community's members, or also members of listed ones."""

    community = "community"
    communities = "communities"


class QuestionKind(StrEnum):
    """A registration question's answer type."""

    text = "text"
    choice = "choice"


class RegistrationQuestion(EventsModel):
    """One question a registrant answers (stored in the activity's `questions`)."""

    id: str = Field(min_length=1, max_length=40, regex=r"^[a-z0-9_-]+$")
    prompt: str = Field(min_length=1, max_length=300)
    kind: QuestionKind = QuestionKind.text
    required: bool = True
    choices: list[str] = Field(default_factory=list, max_length=30)
    max_length: int = Field(default=1000, ge=1, le=4000)

    @model_validator(mode="after")
    def _choices(self) -> RegistrationQuestion:
        if self.kind == QuestionKind.choice and not self.choices:
            raise ValueError(f"question {self.id}: a choice question needs choices")
        if self.kind == QuestionKind.text and self.choices:
            raise ValueError(f"question {self.id}: only a choice question has choices")
        return self


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{value!r} is not an IANA time zone") from exc
    return value


def _aware_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("must carry a UTC offset (RFC 3339)")
    return as_utc(value)  # a ValueError (422) when out of range in UTC, not OverflowError


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
    """Where a registration stands: awaiting approval, a seat, a waitlist place, or over."""

    pending = "pending"  # the activity requires approval; no seat held yet
    confirmed = "confirmed"
    waitlisted = "waitlisted"
    cancelled = "cancelled"
    rejected = "rejected"


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
    # Tier privileges from the snapshot (e.g. `priority_registration`: registers early).
    privileges: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    # The snapshot's version: only a newer snapshot replaces the row (servicekit.readmodel).
    version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ActivityBase(EventsModel):
    """The scalar fields a client sets on an activity (shared by the table and the bodies)."""

    community_id: uuid.UUID
    title: str = Field(min_length=1, max_length=200)
    # Markdown source; clients read the sanitized HTML from `description_html`.
    description: str = Field(default="", max_length=4000)
    kind: ActivityKind = Field(sa_type=String(30))
    starts_at: datetime = Field(sa_type=UtcDateTime)
    ends_at: datetime = Field(sa_type=UtcDateTime)
    # The IANA zone the activity happens in: times are stored in UTC and shown in it too.
    timezone: str = Field(default="UTC", max_length=64, sa_column_kwargs={"server_default": "UTC"})
    capacity: int = Field(ge=1, le=100_000)
    location: str | None = Field(default=None, max_length=300)
    online_url: str | None = Field(default=None, max_length=2000)
    # What success means (目标), and the catalogue metric that measures it.
    goal: str | None = Field(default=None, max_length=500)
    goal_metric: GoalMetric | None = Field(default=None, sa_type=String(40))
    registration_opens_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # Defaults to the start: nobody registers for an activity that has begun.
    registration_closes_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # After this, members can no longer give up their seat themselves.
    cancellation_deadline: datetime | None = Field(default=None, sa_type=UtcDateTime)
    visibility: Visibility = Field(
        default=Visibility.community,
        sa_type=String(20),
        sa_column_kwargs={"server_default": "community"},
    )
    # Members with the tier privilege `priority_registration` may register this long before
    # the window opens (0: no head start).
    priority_hours: float = Field(
        default=0, ge=0, le=24 * 14, sa_column_kwargs={"server_default": "0"}
    )
    requires_approval: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})

    @field_validator("title")
    @classmethod
    def _strip_title(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("title must not be blank")
        return value

    @field_validator("kind", mode="before")
    @classmethod
    def _old_kind_names(cls, value: Any) -> Any:
        return KIND_ALIASES.get(value, value) if isinstance(value, str) else value


class ActivityCreate(ActivityBase):
    """Body of POST /activities (`draft: true` keeps it unpublished until a transition)."""

    draft: bool = False
    hosts: list[uuid.UUID] = Field(default_factory=list, max_length=20)
    open_to: list[uuid.UUID] = Field(default_factory=list, max_length=20)
    questions: list[RegistrationQuestion] = Field(default_factory=list, max_length=20)
    # Reminder leads in minutes before the start (default 24 h and 1 h).
    reminder_minutes: list[int] = Field(default_factory=lambda: [1440, 60], max_length=5)

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        aware = _aware_utc(value)
        assert aware is not None
        return aware

    @field_validator("registration_opens_at", "registration_closes_at", "cancellation_deadline")
    @classmethod
    def _aware_optional(cls, value: datetime | None) -> datetime | None:
        return _aware_utc(value)

    @field_validator("timezone")
    @classmethod
    def _iana(cls, value: str) -> str:
        return _zone(value)

    @field_validator("online_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return str(_HTTP_URL.validate_python(value))

    @field_validator("reminder_minutes")
    @classmethod
    def _leads(cls, value: list[int]) -> list[int]:
        if any(not 1 <= m <= 20160 for m in value):
            raise ValueError("reminder leads are between 1 minute and 14 days (20160)")
        return sorted(set(value), reverse=True)

    @field_validator("hosts", "open_to")
    @classmethod
    def _distinct(cls, value: list[uuid.UUID]) -> list[uuid.UUID]:
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _consistent(self) -> ActivityCreate:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        opens, closes = self.registration_opens_at, self.registration_closes_at
        if opens is not None and closes is not None and closes <= opens:
            raise ValueError("registration_closes_at must be after registration_opens_at")
        if closes is not None and closes > self.ends_at:
            raise ValueError("registration_closes_at must not be after ends_at")
        if self.visibility == Visibility.communities and not self.open_to:
            raise ValueError("visibility 'communities' needs the communities in open_to")
        if self.visibility == Visibility.community and self.open_to:
            raise ValueError("open_to needs visibility 'communities'")
        ids = [q.id for q in self.questions]
        if len(ids) != len(set(ids)):
            raise ValueError("question ids must be distinct")
        return self


class ActivityUpdate(EventsModel):
    """Body of PATCH /activities/{id}: every field optional; the result is checked as a whole."""

    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    kind: ActivityKind | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    timezone: str | None = Field(default=None, max_length=64)
    location: str | None = Field(default=None, max_length=300)
    online_url: str | None = Field(default=None, max_length=2000)
    goal: str | None = Field(default=None, max_length=500)
    goal_metric: GoalMetric | None = None
    registration_opens_at: datetime | None = None
    registration_closes_at: datetime | None = None
    cancellation_deadline: datetime | None = None
    visibility: Visibility | None = None
    priority_hours: float | None = Field(default=None, ge=0, le=24 * 14)
    requires_approval: bool | None = None
    hosts: list[uuid.UUID] | None = Field(default=None, max_length=20)
    open_to: list[uuid.UUID] | None = Field(default=None, max_length=20)
    questions: list[RegistrationQuestion] | None = Field(default=None, max_length=20)
    reminder_minutes: list[int] | None = Field(default=None, max_length=5)

    @field_validator("kind", mode="before")
    @classmethod
    def _old_kind_names(cls, value: Any) -> Any:
        return KIND_ALIASES.get(value, value) if isinstance(value, str) else value


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
    # The sanitized HTML of `description` (servicekit.markdown), rendered once per write.
    description_html: str = Field(default="", sa_type=Text, sa_column_kwargs={"server_default": ""})
    # Members who host the activity (user ids as strings): they may manage it.
    hosts: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    # With visibility `communities`: members of these communities see and may register too.
    open_to: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    # RegistrationQuestion dicts (answered at registration; approval reviews the answers).
    questions: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    reminder_minutes: list[int] = Field(
        default_factory=lambda: [1440, 60],
        sa_column=Column(JSON, nullable=False, server_default="[1440, 60]"),
    )
    # The recurring series this is an occurrence of (series/), if any.
    series_id: uuid.UUID | None = Field(default=None, index=True)
    created_by: uuid.UUID
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


def local_time(value: datetime, zone: str) -> str:
    """An instant as RFC 3339 in the activity's own time zone (with its offset that day)."""
    return as_utc(value).astimezone(ZoneInfo(zone)).isoformat()


class ActivityPublic(EventsModel):
    """An activity as clients see it (times in UTC, and in the activity's zone as *_local)."""

    id: uuid.UUID
    community_id: uuid.UUID
    title: str
    description: str
    description_html: str
    kind: ActivityKind
    starts_at: UtcDatetime
    ends_at: UtcDatetime
    timezone: str
    capacity: int
    seats_taken: int
    state: ActivityState
    location: str | None
    online_url: str | None
    goal: str | None
    goal_metric: str | None
    hosts: list[uuid.UUID]
    registration_opens_at: UtcDatetime | None
    registration_closes_at: UtcDatetime | None
    cancellation_deadline: UtcDatetime | None
    visibility: Visibility
    open_to: list[uuid.UUID]
    priority_hours: float
    requires_approval: bool
    questions: list[RegistrationQuestion]
    reminder_minutes: list[int]
    series_id: uuid.UUID | None
    created_by: uuid.UUID
    created_at: UtcDatetime
    updated_at: UtcDatetime | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def starts_at_local(self) -> str:
        """The start in the activity's time zone."""
        return local_time(self.starts_at, self.timezone)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ends_at_local(self) -> str:
        """The end in the activity's time zone."""
        return local_time(self.ends_at, self.timezone)


class Registration(EventsModel, table=True):
    """One person's registration (报名) for one activity; at most one per person."""

    __tablename__ = "registrations"
    __table_args__ = (
        UniqueConstraint("activity_id", "user_id", name="uq_registration"),
        # The reminder scheduler's scan: confirmed seats whose next reminder is due.
        Index("ix_registrations_reminder_due", "status", "reminder_due_at"),
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
    # When the reminder scheduler last dealt with this seat (reminded, or passed over because
    # the person had left the community).
    reminded_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # The next reminder's time (start minus the next lead), None when none is left; and the
    # lead in minutes of the last one sent: each lead goes out once per seat (reminders.py).
    reminder_due_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    reminder_stage: int | None = None
    # Answers to the activity's registration questions (question id -> text or choices).
    answers: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}")
    )
    decided_by: uuid.UUID | None = None
    decided_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    decision_reason: str | None = Field(default=None, max_length=500)


class RegistrationPublic(EventsModel):
    """A registration as clients see it."""

    id: uuid.UUID
    activity_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    status: RegistrationStatus
    position: int
    registered_at: UtcDatetime
    answers: dict[str, Any] = Field(default_factory=dict)
    decided_at: UtcDatetime | None = None
    decision_reason: str | None = None


class RegistrationCreate(EventsModel):
    """Optional body of POST /activities/{id}/registrations: answers to the questions."""

    answers: dict[str, str | list[str]] = Field(default_factory=dict, max_length=20)


class RejectionRequest(EventsModel):
    """Body of POST .../registrations/{id}/reject (the reason is shown to the registrant)."""

    reason: str | None = Field(default=None, max_length=500)


class TransitionRequest(EventsModel):
    """Body of POST /activities/{id}/transitions: the state to move to."""

    to: ActivityState


class CapacityChange(EventsModel):
    """Body of PUT /activities/{id}/capacity."""

    capacity: int = Field(ge=1, le=100_000)


class CommunityEventSettings(EventsModel, table=True):
    """A community's own rules for its activities, set by its organisers in this context."""

    __tablename__ = "community_settings"

    community_id: uuid.UUID = Field(primary_key=True)
    # How many waitlists one member may stand in at once across the community (None: any).
    max_waitlists: int | None = None
    updated_by: uuid.UUID
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class CommunityEventSettingsUpdate(EventsModel):
    """Body of PUT /communities/{id}/activity-settings."""

    max_waitlists: int | None = Field(default=None, ge=1, le=1000)


class CommunityEventSettingsPublic(EventsModel):
    """A community's activity rules."""

    community_id: uuid.UUID
    max_waitlists: int | None
    updated_at: UtcDatetime | None = None
