"""Evidence's tables: snapshots, retention policies per community, legal holds."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic import Field as InputField
from sqlalchemy import Column, Index, String, Text, UniqueConstraint
from sqlmodel import Field

from hearth_moderation.models import ModerationModel
from servicekit.ids import utcnow, uuid7
from servicekit.types import CleanInput, UtcDateTime


class Evidence(ModerationModel, table=True):
    """A snapshot of one item as it was when an action concerned it.

    `snapshot` is the canonical JSON of the item's text, author, times and attachments' digests
    (and the action that took it); `sha256` is its digest. Kept when the item is deleted, until
    the community's retention ends, and never while a legal hold covers it.
    """

    __tablename__ = "evidence"
    __table_args__ = (
        UniqueConstraint("event_id", "item_type", "item_id", name="uq_evidence_event_item"),
        Index("ix_evidence_item", "item_type", "item_id"),
        Index("ix_evidence_community_captured", "community_id", "captured_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    item_type: str = Field(sa_type=String(40))
    item_id: uuid.UUID
    community_id: uuid.UUID | None = None
    author_id: uuid.UUID | None = None
    action: str = Field(max_length=200)  # the event type of the action
    event_id: uuid.UUID  # the action's event (its audit record names it too)
    audit_seq: int | None = None
    item_known: bool = True  # False: the item was not in the read model; what the event said
    captured_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    sha256: str = Field(max_length=64)
    snapshot: str = Field(sa_column=Column(Text, nullable=False))


class EvidencePublic(BaseModel):
    """A piece of evidence as moderators see it."""

    id: uuid.UUID
    item_type: str
    item_id: uuid.UUID
    community_id: uuid.UUID | None
    author_id: uuid.UUID | None
    action: str
    event_id: uuid.UUID
    audit_seq: int | None
    item_known: bool
    captured_at: datetime
    sha256: str
    snapshot: dict[str, Any]


class RetentionPolicy(ModerationModel, table=True):
    """How long a community keeps evidence (days after capture)."""

    __tablename__ = "evidence_retention"

    community_id: uuid.UUID = Field(primary_key=True)
    days: int
    updated_by: uuid.UUID | None = None
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class RetentionUpdate(CleanInput):
    """A community's evidence retention, in days."""

    model_config = ConfigDict(extra="forbid")

    days: int = InputField(ge=1, le=36500)


class RetentionPublic(BaseModel):
    """A community's evidence retention (`default`: the platform's, no policy of its own)."""

    community_id: uuid.UUID
    days: int
    default: bool


class LegalHold(ModerationModel, table=True):
    """A hold that suspends evidence deletion: of one item, or (no item) a whole community."""

    __tablename__ = "legal_holds"
    __table_args__ = (Index("ix_legal_holds_community", "community_id", "released_at"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    community_id: uuid.UUID
    item_type: str | None = Field(default=None, max_length=40)
    item_id: uuid.UUID | None = None
    reason: str = Field(max_length=1000)
    placed_by: uuid.UUID
    placed_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    released_by: uuid.UUID | None = None
    released_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class LegalHoldCreate(CleanInput):
    """A legal hold: on one item (`item_type` and `item_id`) or, without them, the community."""

    model_config = ConfigDict(extra="forbid")

    item_type: str | None = InputField(default=None, pattern="^(post|comment)$")
    item_id: uuid.UUID | None = None
    reason: str = InputField(min_length=1, max_length=1000)


class LegalHoldPublic(BaseModel):
    """A legal hold as moderators see it."""

    id: uuid.UUID
    community_id: uuid.UUID
    item_type: str | None
    item_id: uuid.UUID | None
    reason: str
    placed_by: uuid.UUID
    placed_at: datetime
    released_by: uuid.UUID | None
    released_at: datetime | None


class CaseSignature(BaseModel):
    """The detached signature of a case bundle: Ed25519 over the bundle's exact UTF-8 bytes."""

    algorithm: str
    key_id: str
    public_key: str
    value: str


class CaseExport(BaseModel):
    """A signed case bundle: `bundle` is the JSON text that was signed, byte for byte."""

    format: str
    bundle: str
    sha256: str
    signature: CaseSignature
