"""Feedback (记录与反馈) on an activity: satisfaction, NPS and a comment, one per attendee."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, UniqueConstraint
from sqlmodel import Field

from hearth_events.models import EventsModel
from servicekit.ids import utcnow, uuid7
from servicekit.types import UtcDateTime, UtcDatetime


class Feedback(EventsModel, table=True):
    """One attendee's feedback on one activity (editable for a while after it is first sent)."""

    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("activity_id", "user_id", name="uq_feedback"),
        CheckConstraint("satisfaction BETWEEN 1 AND 5", name="ck_feedback_satisfaction"),
        CheckConstraint("nps BETWEEN 0 AND 10", name="ck_feedback_nps"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    activity_id: uuid.UUID = Field(foreign_key="activities.id")  # indexed by uq_feedback
    community_id: uuid.UUID
    user_id: uuid.UUID = Field(index=True)
    satisfaction: int
    nps: int
    comment: str | None = Field(default=None, max_length=2000)
    submitted_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class FeedbackCreate(EventsModel):
    """Body of PUT /activities/{id}/feedback/me (the first time, or an edit)."""

    satisfaction: int = Field(ge=1, le=5)
    nps: int = Field(ge=0, le=10)
    comment: str | None = Field(default=None, max_length=2000)


class FeedbackPublic(EventsModel):
    """Feedback as its author and the activity's managers see it."""

    id: uuid.UUID
    activity_id: uuid.UUID
    user_id: uuid.UUID
    satisfaction: int
    nps: int
    comment: str | None
    submitted_at: UtcDatetime
    updated_at: UtcDatetime
    editable_until: UtcDatetime
