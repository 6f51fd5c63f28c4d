"""Events the events context publishes (subjects `<prefix>.events.<entity>.<fact>.v<N>`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from servicekit.events import Event, event_type


@event_type("events.activity.published.v1")
class ActivityPublished(Event):
    """An activity was published in a community and is open for registration."""

    activity_id: uuid.UUID
    community_id: uuid.UUID
    title: str
    kind: str
    starts_at: datetime
    ends_at: datetime
    capacity: int
    location: str | None = None
    online_url: str | None = None
    published_by: uuid.UUID
    published_at: datetime


@event_type("events.registration.confirmed.v1")
class RegistrationConfirmed(Event):
    """A member holds a confirmed seat at an activity."""

    registration_id: uuid.UUID
    activity_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    registered_at: datetime


@event_type("events.registration.reminder_due.v1")
class RegistrationReminderDue(Event):
    """A registered member's activity starts soon: they are due a reminder (members' inbox).

    Defined before its producer exists: members turns it into an `event.reminder` notification,
    once per event id; the events context adopts this contract when it schedules reminders.
    `online_url` or `location` (either may be absent) tells the member where to go.
    """

    registration_id: uuid.UUID
    activity_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    title: str
    starts_at: datetime
    location: str | None = None
    online_url: str | None = None
    due_at: datetime


@event_type("events.activity.state_changed.v1")
class ActivityStateChanged(Event):
    """An activity moved along its lifecycle (draft → published → … → summarized, or cancelled)."""

    activity_id: uuid.UUID
    community_id: uuid.UUID
    from_state: str
    to_state: str
    changed_by: uuid.UUID
    changed_at: datetime


@event_type("events.registration.waitlisted.v1")
class RegistrationWaitlisted(Event):
    """A member joined an activity's FIFO waitlist because every seat was taken."""

    registration_id: uuid.UUID
    activity_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    position: int
    registered_at: datetime


@event_type("events.registration.promoted.v1")
class RegistrationPromoted(Event):
    """A seat freed up and the first waitlisted member now holds it (members notifies them)."""

    registration_id: uuid.UUID
    activity_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    promoted_at: datetime


@event_type("events.registration.cancelled.v1")
class RegistrationCancelled(Event):
    """A member gave up their seat or their place in the waitlist."""

    registration_id: uuid.UUID
    activity_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    was: str
    cancelled_at: datetime


@event_type("events.activity.updated.v1")
class ActivityUpdated(Event):
    """An organiser or host changed an activity's details (`changed` names the fields)."""

    activity_id: uuid.UUID
    community_id: uuid.UUID
    changed: list[str]
    title: str
    starts_at: datetime
    ends_at: datetime
    timezone: str
    updated_by: uuid.UUID
    updated_at: datetime


@event_type("events.activity.cancelled.v1")
class ActivityCancelled(Event):
    """An activity was called off before it ended; each registrant also gets registration.voided."""

    activity_id: uuid.UUID
    community_id: uuid.UUID
    title: str
    starts_at: datetime
    registrants: int
    cancelled_by: uuid.UUID
    cancelled_at: datetime


@event_type("events.activity.started.v1")
class ActivityStarted(Event):
    """An activity went live (ongoing), with the seats confirmed at that moment."""

    activity_id: uuid.UUID
    community_id: uuid.UUID
    confirmed: int
    started_by: uuid.UUID
    started_at: datetime


@event_type("events.activity.ended.v1")
class ActivityEnded(Event):
    """An activity ended: feedback opens for its attendees."""

    activity_id: uuid.UUID
    community_id: uuid.UUID
    ended_by: uuid.UUID
    ended_at: datetime


@event_type("events.activity.summarized.v1")
class ActivitySummarized(Event):
    """An activity's summary (活动总结) was taken: the figures of its report at that moment."""

    activity_id: uuid.UUID
    community_id: uuid.UUID
    registrations: int
    confirmed: int
    waitlisted: int
    attended: int
    no_shows: int
    attendance_rate: float | None = None
    feedback_count: int
    satisfaction_avg: float | None = None
    nps: float | None = None
    questions: int
    conversions: int
    conversion_value: float
    summarized_by: uuid.UUID
    summarized_at: datetime


@event_type("events.registration.approved.v1")
class RegistrationApproved(Event):
    """A host approved a pending registration: it took a seat (`confirmed`) or a waitlist place."""

    registration_id: uuid.UUID
    activity_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    status: str
    approved_by: uuid.UUID
    approved_at: datetime


@event_type("events.registration.rejected.v1")
class RegistrationRejected(Event):
    """A host turned a registration down (`was`: what it was before); a freed seat promotes."""

    registration_id: uuid.UUID
    activity_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    was: str
    reason: str | None = None
    rejected_by: uuid.UUID
    rejected_at: datetime


@event_type("events.registration.voided.v1")
class RegistrationVoided(Event):
    """The activity was cancelled, so this registration is void: members tells the registrant."""

    registration_id: uuid.UUID
    activity_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    title: str
    starts_at: datetime
    was: str
    voided_at: datetime
