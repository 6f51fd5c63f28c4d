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
