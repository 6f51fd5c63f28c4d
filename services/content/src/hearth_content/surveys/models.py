"""Surveys (调查): a set of questions open for a window, one response per member.

The questions are stored with the survey (JSON) and never change once it exists: responses
refer to them by id (`q1`, `q2`, … in order) and choice answers name options by index, so a
response always means what it meant when it was given.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import field_validator, model_validator
from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field

from hearth_content.models import ContentModel
from servicekit.ids import utcnow, uuid7
from servicekit.types import UtcDateTime, UtcDatetime

TITLE_MAX = 200
DESCRIPTION_MAX = 4000
PROMPT_MAX = 500
OPTION_MAX = 200
MAX_QUESTIONS = 50
MAX_OPTIONS = 20
TEXT_ANSWER_MAX = 4000


class QuestionKind(StrEnum):
    """What a question asks for."""

    single = "single"  # one option (its index)
    multiple = "multiple"  # several options (their indexes), at most `max_choices`
    scale_1_5 = "scale_1_5"  # an integer 1..5
    scale_0_10 = "scale_0_10"  # an integer 0..10; results add a Net Promoter Score
    text = "text"  # free text


SCALES = {QuestionKind.scale_1_5: (1, 5), QuestionKind.scale_0_10: (0, 10)}
CHOICES = (QuestionKind.single, QuestionKind.multiple)


class QuestionCreate(ContentModel):
    """One question of a SurveyCreate."""

    prompt: str = Field(min_length=1, max_length=PROMPT_MAX)
    kind: QuestionKind
    required: bool = True
    options: list[str] = Field(default_factory=list, max_length=MAX_OPTIONS)
    max_choices: int | None = Field(default=None, ge=1, le=MAX_OPTIONS)

    @field_validator("prompt")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("prompt must not be blank")
        return value

    @model_validator(mode="after")
    def _shape(self) -> QuestionCreate:
        options = [o.strip() for o in self.options]
        if self.kind in CHOICES:
            if len(options) < 2:
                raise ValueError("a choice question needs at least two options")
            if any(not o or len(o) > OPTION_MAX for o in options):
                raise ValueError(f"options must be 1..{OPTION_MAX} characters")
            if len(set(options)) != len(options):
                raise ValueError("options must be distinct")
            self.options = options
        elif options:
            raise ValueError("only single and multiple choice questions have options")
        if self.max_choices is not None:
            if self.kind != QuestionKind.multiple:
                raise ValueError("max_choices is for multiple choice questions")
            if self.max_choices > len(options):
                raise ValueError("max_choices exceeds the number of options")
        return self


class SurveyCreate(ContentModel):
    """Body of POST /communities/{community_id}/surveys."""

    title: str = Field(min_length=1, max_length=TITLE_MAX)
    description: str = Field(default="", max_length=DESCRIPTION_MAX)
    questions: list[QuestionCreate] = Field(min_length=1, max_length=MAX_QUESTIONS)
    opens_at: UtcDatetime | None = None  # None: open now
    closes_at: UtcDatetime
    # Whether a member may change their response until the survey closes.
    editable: bool = True
    # Whether members see the results summary (creator and staff always do).
    results_public: bool = True

    @field_validator("title")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("title must not be blank")
        return value

    @model_validator(mode="after")
    def _window(self) -> SurveyCreate:
        now = utcnow()
        if self.closes_at <= max(self.opens_at or now, now):
            raise ValueError("closes_at must be in the future and after opens_at")
        return self


class Survey(ContentModel, table=True):
    """A survey of one community."""

    __tablename__ = "surveys"
    __table_args__ = (Index("ix_surveys_community_id_id", "community_id", "id"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    community_id: uuid.UUID
    author_id: uuid.UUID
    title: str = Field(max_length=TITLE_MAX)
    description: str = Field(default="", sa_type=Text)
    # [{"id": "q1", "prompt": ..., "kind": ..., "required": ..., "options": [...], ...}, ...]
    questions: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    opens_at: datetime = Field(sa_type=UtcDateTime)
    closes_at: datetime = Field(sa_type=UtcDateTime)
    editable: bool = True
    results_public: bool = True
    # Set when closed early by its author or staff (the window's end needs no write).
    closed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class SurveyResponse(ContentModel, table=True):
    """One member's response to a survey (the unique constraint keeps it one)."""

    __tablename__ = "survey_responses"
    __table_args__ = (
        UniqueConstraint("survey_id", "respondent_id", name="uq_survey_responses_respondent"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    survey_id: uuid.UUID
    respondent_id: uuid.UUID
    # {"q1": 0, "q2": [1, 3], "q3": 4, "q4": "free text"}; unanswered optional questions absent.
    answers: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    submitted_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    revision: int = Field(default=1, sa_column_kwargs={"server_default": "1"})


class SurveyState(StrEnum):
    """Where a survey's window stands now."""

    scheduled = "scheduled"
    open = "open"
    closed = "closed"


class QuestionPublic(ContentModel):
    """A question as clients see it."""

    id: str
    prompt: str
    kind: QuestionKind
    required: bool
    options: list[str]
    max_choices: int | None = None


class SurveyPublic(ContentModel):
    """A survey as clients see it."""

    id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID
    title: str
    description: str
    questions: list[QuestionPublic]
    opens_at: datetime
    closes_at: datetime
    closed_at: datetime | None
    editable: bool
    results_public: bool
    state: SurveyState
    response_count: int
    created_at: datetime


Answer = int | list[int] | str | None


class SurveyResponseCreate(ContentModel):
    """Body of PUT /surveys/{survey_id}/responses/me: answers by question id."""

    answers: dict[str, Answer] = Field(max_length=MAX_QUESTIONS)


class SurveyResponsePublic(ContentModel):
    """A member's own response."""

    survey_id: uuid.UUID
    respondent_id: uuid.UUID
    answers: dict[str, Any]
    submitted_at: datetime
    updated_at: datetime
    revision: int


class QuestionResult(ContentModel):
    """The summary of one question's answers."""

    id: str
    prompt: str
    kind: QuestionKind
    answered: int
    # Choice questions: per option, in order; scales: per value, as strings ("1".."5").
    counts: dict[str, int] = {}
    mean: float | None = None
    # 0-10 scales: promoters (9-10) minus detractors (0-6), in percent of those who answered.
    nps: float | None = None
    # Text questions: how many answered; the texts themselves are in the CSV export.


class SurveyResults(ContentModel):
    """A survey's results summary."""

    survey_id: uuid.UUID
    responses: int
    state: SurveyState
    questions: list[QuestionResult]
