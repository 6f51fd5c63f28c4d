"""Events the feedback sub-domain publishes."""

from __future__ import annotations

import uuid
from datetime import datetime

from servicekit.events import Event, event_type


@event_type("events.feedback.submitted.v1")
class FeedbackSubmitted(Event):
    """An attendee sent (or, with `edited`, changed) their feedback on an activity."""

    feedback_id: uuid.UUID
    activity_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    satisfaction: int
    nps: int
    has_comment: bool
    edited: bool
    submitted_at: datetime
