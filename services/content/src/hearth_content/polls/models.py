"""Poll tables: polls, their options, one ballot per member per poll, and the ballot's choices.

The database enforces "one vote per member per poll": `poll_ballots` has the primary key
(poll_id, member_id), so two concurrent first votes by one member cannot both land, whatever
the number of replicas. A ballot's choices are rows of `poll_choices` (primary key
(poll_id, member_id, option_id)), counted per option with one GROUP BY.

Anonymous polls still store who holds a ballot (the database needs it to keep one vote per
member and to let a member change their vote); what is anonymous is everything that leaves the
service: results carry no voters, and `content.poll.voted.v1` carries no voter id.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import field_validator, model_validator
from sqlalchemy import Index, String
from sqlmodel import Field

from hearth_content.models import ContentModel
from servicekit.ids import utcnow, uuid7
from servicekit.types import UtcDateTime, UtcDatetime

QUESTION_MAX = 300
OPTION_MAX = 200
MAX_OPTIONS = 20


class ResultsVisibility(StrEnum):
    """Who sees a poll's results, and when (staff of the community always do)."""

    on_vote = "on_vote"  # a member once they voted; everyone once it closes
    on_close = "on_close"  # everyone once it closes
    staff = "staff"  # only the community's staff and platform staff, ever


class Poll(ContentModel, table=True):
    """A poll in a community, optionally attached to a post and a column."""

    __tablename__ = "polls"
    __table_args__ = (
        Index("ix_polls_community_id_id", "community_id", "id"),
        # The closer's scan: open polls whose close time has come.
        Index("ix_polls_closed_at_closes_at", "closed_at", "closes_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    community_id: uuid.UUID
    author_id: uuid.UUID
    post_id: uuid.UUID | None = None
    column_id: uuid.UUID | None = None
    question: str = Field(max_length=QUESTION_MAX)
    multiple: bool = False
    # Multiple choice: at most this many options per ballot (single choice: 1).
    max_choices: int = 1
    anonymous: bool = False
    results: ResultsVisibility = Field(default=ResultsVisibility.on_vote, sa_type=String(16))
    allow_change: bool = False
    closes_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class PollOption(ContentModel, table=True):
    """One option of a poll, in its position."""

    __tablename__ = "poll_options"
    __table_args__ = (Index("ix_poll_options_poll_id_position", "poll_id", "position"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    poll_id: uuid.UUID
    position: int
    label: str = Field(max_length=OPTION_MAX)


class PollBallot(ContentModel, table=True):
    """A member's one ballot in a poll (the primary key is the one-vote rule)."""

    __tablename__ = "poll_ballots"

    poll_id: uuid.UUID = Field(primary_key=True)
    member_id: uuid.UUID = Field(primary_key=True)
    # A random id per ballot: lets metrics tell first votes from changes in anonymous polls
    # without learning who voted (it links to nothing outside this poll).
    ballot_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    voted_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    changed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class PollChoice(ContentModel, table=True):
    """One option chosen on a member's ballot."""

    __tablename__ = "poll_choices"
    __table_args__ = (Index("ix_poll_choices_option_id", "option_id"),)

    poll_id: uuid.UUID = Field(primary_key=True)
    member_id: uuid.UUID = Field(primary_key=True)
    option_id: uuid.UUID = Field(primary_key=True)


class PollCreate(ContentModel):
    """Body of POST /communities/{community_id}/polls."""

    question: str = Field(min_length=1, max_length=QUESTION_MAX)
    options: list[str] = Field(min_length=2, max_length=MAX_OPTIONS)
    multiple: bool = False
    max_choices: int | None = Field(default=None, ge=1, le=MAX_OPTIONS)
    anonymous: bool = False
    results: ResultsVisibility = ResultsVisibility.on_vote
    allow_change: bool = False
    closes_at: UtcDatetime | None = None
    post_id: uuid.UUID | None = None
    column_id: uuid.UUID | None = None

    @field_validator("question")
    @classmethod
    def _strip_question(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("question must not be blank")
        return value

    @field_validator("options")
    @classmethod
    def _clean_options(cls, value: list[str]) -> list[str]:
        cleaned = [v.strip() for v in value]
        if any(not v or len(v) > OPTION_MAX for v in cleaned):
            raise ValueError(f"each option needs 1 to {OPTION_MAX} characters")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("options must differ")
        return cleaned

    @field_validator("closes_at")
    @classmethod
    def _future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value <= utcnow():
            raise ValueError("closes_at must be in the future")
        return value

    @model_validator(mode="after")
    def _choices(self) -> PollCreate:
        if not self.multiple and self.max_choices not in (None, 1):
            raise ValueError("a single-choice poll takes one choice")
        if self.max_choices is not None and self.max_choices > len(self.options):
            raise ValueError("max_choices may not exceed the number of options")
        return self


class VoteRequest(ContentModel):
    """Body of PUT /polls/{poll_id}/vote: the chosen options."""

    option_ids: list[uuid.UUID] = Field(min_length=1, max_length=MAX_OPTIONS)


class PollOptionPublic(ContentModel):
    """An option, with its count and (named polls) voters when the caller may see results."""

    id: uuid.UUID
    label: str
    votes: int | None = None
    voters: list[uuid.UUID] | None = None


class PollPublic(ContentModel):
    """A poll as clients see it: results only when its visibility lets the caller see them."""

    id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID
    post_id: uuid.UUID | None
    column_id: uuid.UUID | None
    question: str
    multiple: bool
    max_choices: int
    anonymous: bool
    results: ResultsVisibility
    allow_change: bool
    closes_at: datetime | None
    closed_at: datetime | None
    created_at: datetime
    is_closed: bool
    options: list[PollOptionPublic]
    results_visible: bool
    total_voters: int | None = None
    my_choices: list[uuid.UUID] = []
