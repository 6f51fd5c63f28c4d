"""Review's tables: a community's policy, claims on posts in review, and every decision taken."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Index, String, Text
from sqlmodel import Field

from hearth_content.models import ContentModel
from servicekit.ids import utcnow, uuid7
from servicekit.types import UtcDateTime

# A claim lapses so a reviewer who walks away does not block the post for good.
CLAIM_TTL = timedelta(minutes=30)
NOTE_MAX = 2000


class ReviewMode(StrEnum):
    """How many human stages a community's posts pass after moderation's screening."""

    off = "off"
    one_stage = "one_stage"
    two_stages = "two_stages"


class Verdict(StrEnum):
    """What a reviewer decides on one stage."""

    approve = "approve"
    reject = "reject"


class ReviewPolicy(ContentModel, table=True):
    """A community's review policy; a community without a row has review off."""

    __tablename__ = "review_policies"

    community_id: uuid.UUID = Field(primary_key=True)
    mode: ReviewMode = Field(default=ReviewMode.off, sa_type=String(16))
    # Partner content always passes the second stage (admin/owner), whatever the mode.
    partner_second_stage: bool = False
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ReviewClaim(ContentModel, table=True):
    """A reviewer working on a post; one at a time, until it expires."""

    __tablename__ = "review_claims"

    post_id: uuid.UUID = Field(primary_key=True)
    reviewer_id: uuid.UUID
    expires_at: datetime = Field(sa_type=UtcDateTime)


class ReviewDecision(ContentModel, table=True):
    """One decision on one stage of one submission round of a post (history is never edited)."""

    __tablename__ = "review_decisions"
    __table_args__ = (Index("ix_review_decisions_post_id_round", "post_id", "round"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    post_id: uuid.UUID
    community_id: uuid.UUID
    # Each resubmission starts a new round; the rule "not both stages" holds within a round.
    round: int = 1
    stage: int
    reviewer_id: uuid.UUID
    verdict: Verdict = Field(sa_type=String(16))
    note: str = Field(default="", sa_type=Text)
    decided_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
