"""Events of Q&A: a question asked (moderation may screen it, target_type "question"), answered."""

from __future__ import annotations

import uuid
from datetime import datetime

from servicekit.events import Event, event_type


@event_type("events.question.asked.v1")
class QuestionAsked(Event):
    """A member asked a question at an activity (the author is named even when anonymous)."""

    question_id: uuid.UUID
    activity_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID
    text: str
    asked_at: datetime
    anonymous: bool = False


@event_type("events.question.answered.v1")
class QuestionAnswered(Event):
    """An organiser marked a question answered."""

    question_id: uuid.UUID
    activity_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID
    answered_by: uuid.UUID
    answered_at: datetime
