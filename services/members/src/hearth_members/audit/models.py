"""The audit table."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field

from hearth_members.models import MembersModel
from servicekit.ids import utcnow, uuid7
from servicekit.types import UtcDateTime


class AuditRecord(MembersModel, table=True):
    """One audited act (append-only)."""

    __tablename__ = "audit"

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    actor_id: uuid.UUID = Field(index=True)
    action: str = Field(max_length=80)
    target_type: str = Field(max_length=40)
    target_id: str = Field(max_length=80, index=True)
    community_id: uuid.UUID | None = Field(default=None, index=True)
    reason: str = Field(default="", max_length=1000)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class AuditPublic(MembersModel):
    """An audit record as readers see it."""

    id: uuid.UUID
    actor_id: uuid.UUID
    action: str
    target_type: str
    target_id: str
    community_id: uuid.UUID | None
    reason: str
    details: dict[str, Any]
    at: datetime
