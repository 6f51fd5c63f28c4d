"""Inactivity marks: who has been announced quiet, so each transition is announced once."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Field

from hearth_metrics.models import MetricsModel
from servicekit.types import UtcDateTime


class InactivityMark(MetricsModel, table=True):
    """A member announced quiet (kind `inactive` or `quiet_top_contributor`) and not back yet.

    The primary key is the claim: of two replicas detecting the same member, one inserts the
    row (and records member.inactive in the same transaction), the other inserts nothing. The
    member's return deletes the marks (recording member.active once). Not derived from the
    streams, so a rebuild keeps it.
    """

    __tablename__ = "inactivity_marks"

    community_id: uuid.UUID = Field(primary_key=True)
    member: int = Field(primary_key=True)
    kind: str = Field(primary_key=True, max_length=40)
    user_id: uuid.UUID
    last_active_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    marked_at: datetime = Field(sa_type=UtcDateTime)
