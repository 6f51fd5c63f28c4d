"""The audit log's tables: the records (a hash chain) and the chain's head (one row)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import BigInteger, Column, Index, Text
from sqlmodel import Field

from hearth_moderation.models import ModerationModel
from servicekit.types import UtcDateTime

GENESIS = "0" * 64  # the previous hash of the first record
HEAD_ID = 1


class AuditRecord(ModerationModel, table=True):
    """One audited event. `body` is the canonical JSON of the record's fields (its previous
    record's hash included); `hash` is the SHA-256 of `body`. The other columns repeat fields of
    `body` for look-ups; verification checks that they agree with it."""

    __tablename__ = "audit_records"
    __table_args__ = (
        Index("ix_audit_records_item", "item_type", "item_id"),
        Index("ix_audit_records_community_seq", "community_id", "seq"),
    )

    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    event_id: uuid.UUID = Field(unique=True)
    event_type: str = Field(max_length=200)
    community_id: uuid.UUID | None = None
    item_type: str | None = Field(default=None, max_length=40)
    item_id: uuid.UUID | None = None
    recorded_at: datetime = Field(sa_type=UtcDateTime)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
    body: str = Field(sa_column=Column(Text, nullable=False))


class AuditChainHead(ModerationModel, table=True):
    """The chain's last record (one row, locked by each append) and what was last published."""

    __tablename__ = "audit_chain_head"

    id: int = Field(default=HEAD_ID, primary_key=True)
    seq: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    hash: str = Field(default=GENESIS, max_length=64)
    updated_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    published_seq: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, server_default="0")
    )
    published_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class AuditRecordPublic(BaseModel):
    """An audit record as staff read it (its fields are `body`'s)."""

    seq: int
    event_id: uuid.UUID
    event_type: str
    community_id: uuid.UUID | None
    item_type: str | None
    item_id: uuid.UUID | None
    recorded_at: datetime
    prev_hash: str
    hash: str
    fields: dict[str, Any]


class BrokenRecord(BaseModel):
    """The first record whose content, hash or link does not hold."""

    seq: int
    event_id: uuid.UUID | None
    reason: str


class AuditVerification(BaseModel):
    """The answer of `verify`: whether the whole chain holds, and if not, where it first breaks."""

    ok: bool
    records: int
    head_seq: int
    head_hash: str
    broken: BrokenRecord | None = None
