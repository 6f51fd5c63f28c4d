"""Moderation's tables: screenings (plus the kernel's outbox/inbox/dead letters)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, Index, String, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from servicekit.ids import utcnow, uuid7
from servicekit.tables import KitTables
from servicekit.types import CleanInput, UtcDateTime


class ModerationModel(SQLModel, CleanInput, registry=registry()):
    """Base of moderation's tables: its own metadata, because moderation owns its own database."""


metadata = ModerationModel.metadata
kit = KitTables(metadata)


class TargetType(StrEnum):
    """What a screening looked at."""

    post = "post"


class ScreeningDecision(StrEnum):
    """The outcome of an automatic screening."""

    approved = "approved"
    held = "held"


class Screening(ModerationModel, table=True):
    """One automatic screening of one target; a target is screened once, however often announced."""

    __tablename__ = "screenings"
    __table_args__ = (
        UniqueConstraint("target_type", "target_id", name="uq_screening_target"),
        Index("ix_screenings_community_id_id", "community_id", "id"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    # Plain strings, not database enums, so later target types and decisions need no ALTER TYPE.
    target_type: TargetType = Field(sa_type=String(40))
    target_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID | None = None
    decision: ScreeningDecision = Field(sa_type=String(16))
    matched_terms: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    source_event_id: uuid.UUID | None = None  # the event that asked for it, for the audit trail
    screened_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ScreeningPublic(ModerationModel):
    """A screening as staff see it."""

    id: uuid.UUID
    target_type: TargetType
    target_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID | None
    decision: ScreeningDecision
    matched_terms: list[str]
    reasons: list[str]
    source_event_id: uuid.UUID | None
    screened_at: datetime
