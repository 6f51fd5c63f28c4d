"""Care tables: per-community journey settings and the journeys themselves."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, text
from sqlmodel import Field

from hearth_members.models import MembersModel
from servicekit.ids import utcnow, uuid7
from servicekit.types import UtcDateTime


class CareSettingsBase(MembersModel):
    """How a community's care journeys run."""

    enabled: bool = True
    follow_up_after_hours: float = Field(default=72.0, gt=0, le=24 * 90)
    win_back_days: int = Field(default=14, ge=1, le=180)


class CareSettingsUpdate(CareSettingsBase):
    """Body of PUT /communities/{id}/care-settings."""


class CareSettings(CareSettingsBase, table=True):
    """A community's care settings (absent: the defaults)."""

    __tablename__ = "care_settings"

    community_id: uuid.UUID = Field(foreign_key="communities.id", primary_key=True)
    updated_by: uuid.UUID | None = None
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class CareSettingsPublic(CareSettingsBase):
    """A community's effective care settings."""

    community_id: uuid.UUID


class JourneyStatus(StrEnum):
    """Where a care journey stands."""

    nudged = "nudged"  # first nudge sent, follow-up pending
    followed_up = "followed_up"  # follow-up sent, waiting for the member
    won_back = "won_back"  # active again within the window
    lapsed = "lapsed"  # the window closed without activity


OPEN_STATUSES = (JourneyStatus.nudged, JourneyStatus.followed_up)
_OPEN = text("status IN ('nudged', 'followed_up')")


class CareJourney(MembersModel, table=True):
    """One care journey of one quiet member; at most one open per member and community."""

    __tablename__ = "care_journeys"
    __table_args__ = (
        Index(
            "uq_care_journey_open",
            "community_id",
            "user_id",
            unique=True,
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        ),
        Index("ix_care_journey_due", "status", "follow_up_due_at"),
        Index("ix_care_journey_closes", "status", "closes_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    community_id: uuid.UUID = Field(foreign_key="communities.id", index=True)
    user_id: uuid.UUID = Field(index=True)
    trigger: str = Field(max_length=40)  # inactive | quiet_top_contributor
    trigger_event_id: uuid.UUID
    status: JourneyStatus = JourneyStatus.nudged
    nudges_sent: int = 1
    started_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    follow_up_due_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    followed_up_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    closes_at: datetime = Field(sa_type=UtcDateTime)
    won_back_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class CareJourneyPublic(MembersModel):
    """A care journey as community managers see it."""

    id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    trigger: str
    status: JourneyStatus
    nudges_sent: int
    started_at: datetime
    follow_up_due_at: datetime | None
    followed_up_at: datetime | None
    closes_at: datetime
    won_back_at: datetime | None


class CareSummary(MembersModel):
    """How a community's care journeys went."""

    community_id: uuid.UUID
    started: int
    open: int
    won_back: int
    lapsed: int
    win_back_rate: float | None


class TickResult(MembersModel):
    """What one scheduler tick did."""

    follow_ups: int = 0
    lapsed: int = 0
