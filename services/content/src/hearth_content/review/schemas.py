"""Request and response bodies of the review routes."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from hearth_content.review.models import NOTE_MAX, ReviewMode, Verdict
from servicekit.types import CleanInput


class PolicyIn(CleanInput):
    """Body of PUT /communities/{id}/review-policy."""

    mode: ReviewMode
    partner_second_stage: bool = False


class PolicyOut(PolicyIn):
    """A community's review policy."""

    community_id: uuid.UUID


class DecisionIn(CleanInput):
    """Body of POST /posts/{id}/review/decision: every decision carries a note."""

    verdict: Verdict
    note: str = Field(min_length=1, max_length=NOTE_MAX)


class BulkDecisionIn(DecisionIn):
    """Body of POST /communities/{id}/review/bulk."""

    post_ids: list[uuid.UUID] = Field(min_length=1, max_length=100)


class DecisionOut(BaseModel):
    """One decision in a post's review history."""

    id: uuid.UUID
    post_id: uuid.UUID
    round: int
    stage: int
    reviewer_id: uuid.UUID
    verdict: Verdict
    note: str
    decided_at: datetime


class QueueItem(BaseModel):
    """A post waiting for a reviewer, with its age against the SLA."""

    post_id: uuid.UUID
    title: str
    author_id: uuid.UUID
    stage: int
    submitted_at: datetime
    age_seconds: int
    claimed_by: uuid.UUID | None
    claim_expires_at: datetime | None


class BulkResult(BaseModel):
    """Per post: decided, or the problem that stopped it."""

    decided: list[uuid.UUID]
    refused: dict[str, str]
