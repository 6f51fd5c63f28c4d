"""Events the surveys package publishes (subjects `<prefix>.content.survey.<fact>.v1`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from servicekit.events import Event, event_type


@event_type("content.survey.created.v1")
class SurveyCreated(Event):
    """A member or the community's team opened a survey (its window: opens_at..closes_at)."""

    survey_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID
    title: str
    questions: int
    opens_at: datetime
    closes_at: datetime
    created_at: datetime


@event_type("content.survey.answered.v1")
class SurveyAnswered(Event):
    """A member answered a survey (`revision` 1), or changed their answers (2, 3, …)."""

    survey_id: uuid.UUID
    community_id: uuid.UUID
    respondent_id: uuid.UUID
    revision: int
    answered_at: datetime


@event_type("content.survey.closed.v1")
class SurveyClosed(Event):
    """A survey was closed before its window ended (a window's end itself is not announced)."""

    survey_id: uuid.UUID
    community_id: uuid.UUID
    closed_by: uuid.UUID
    responses: int
    closed_at: datetime
