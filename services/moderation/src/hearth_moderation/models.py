"""Moderation's tables: screenings, versioned rule sets, the membership read model (plus the
kernel's outbox/inbox/dead letters)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

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
    comment = "comment"
    question = "question"  # an activity's Q&A question (events' question.asked)


class ScreeningDecision(StrEnum):
    """The outcome of an automatic screening."""

    approved = "approved"
    held = "held"


class Screening(ModerationModel, table=True):
    """The automatic screening of one target's latest round; each round is screened once."""

    __tablename__ = "screenings"
    __table_args__ = (
        UniqueConstraint("target_type", "target_id", name="uq_screening_target"),
        Index("ix_screenings_community_id_id", "community_id", "id"),
        # Flood limits: one member's screenings in a community, by time.
        Index("ix_screenings_author_time", "community_id", "author_id", "screened_at"),
        # Duplicates across communities: the same normalized text, by time.
        Index("ix_screenings_digest_time", "text_digest", "screened_at"),
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
    # The submission round screened (content's review round): a resubmitted post is a new round.
    round: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    screened_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    # The community rule-set version that decided (0: platform defaults only), the verdict
    # (allow or the most severe action) and every hit, so a decision can always be explained.
    rule_set_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    verdict: str = Field(
        default="allow", max_length=32, sa_column_kwargs={"server_default": "allow"}
    )
    hits: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    tags: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    # SHA-256 of the text's compact normalized form (duplicate detection across communities).
    text_digest: str | None = Field(default=None, max_length=64)


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
    rule_set_version: int
    verdict: str
    hits: list[dict[str, Any]]
    tags: list[str]


class RuleSetVersion(ModerationModel, table=True):
    """One version of a community's rule set; a change never edits a row, it adds the next one."""

    __tablename__ = "rule_set_versions"
    __table_args__ = (UniqueConstraint("community_id", "version", name="uq_rule_set_version"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    community_id: uuid.UUID = Field(index=True)
    version: int  # 1, 2, 3… per community; a concurrent change loses on the unique constraint
    rules: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))  # a RuleSetDraft
    author_id: uuid.UUID | None = None
    note: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class RuleSetVersionPublic(ModerationModel):
    """A rule-set version as its community's team sees it."""

    id: uuid.UUID
    community_id: uuid.UUID
    version: int
    rules: dict[str, Any]
    author_id: uuid.UUID | None
    note: str | None
    created_at: datetime


class Membership(ModerationModel, table=True):
    """Read model: one person's place in one community, from members' snapshots (authorization)."""

    __tablename__ = "memberships"

    community_id: uuid.UUID = Field(primary_key=True)
    user_id: uuid.UUID = Field(primary_key=True, index=True)
    membership_id: uuid.UUID | None = None
    role: str = Field(default="member", max_length=40)
    status: str | None = Field(default=None, max_length=40)
    muted_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    joined_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    tier: str | None = Field(default=None, max_length=40)  # reporter weight, stricter screening
    # The snapshot's version: only a newer snapshot replaces the row (servicekit.readmodel).
    version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


# Community roles that manage rules (with platform staff).
RULE_MANAGERS = frozenset({"owner", "admin", "moderator"})


# Sub-domain tables, imported last (they subclass ModerationModel): the registry holds them all.
from hearth_moderation.audit import models as _audit_models  # noqa: E402, F401
from hearth_moderation.evidence import models as _evidence_models  # noqa: E402, F401
from hearth_moderation.items import models as _items_models  # noqa: E402, F401
from hearth_moderation.sentiment import models as _sentiment_models  # noqa: E402, F401
