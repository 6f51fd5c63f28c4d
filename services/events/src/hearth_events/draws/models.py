"""Lucky draws (抽奖) anyone can verify: prizes, the frozen eligible list, seed and winners."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, String, UniqueConstraint
from sqlmodel import Field

from hearth_events.models import EventsModel
from servicekit.ids import utcnow, uuid7
from servicekit.types import UtcDateTime, UtcDatetime


class DrawState(StrEnum):
    """open (editable) → committed (list and seed fixed) → revealed (winners) → completed."""

    open = "open"
    committed = "committed"
    revealed = "revealed"
    completed = "completed"


class PrizeCreate(EventsModel):
    """One prize of a draw and how many people win it."""

    name: str = Field(min_length=1, max_length=200)
    count: int = Field(ge=1, le=1000)


class DrawRules(EventsModel):
    """Who may win: checked in only, some tiers only, people excluded, one win per person."""

    checked_in_only: bool = True
    # Members' tier names (e.g. "gold"); None: every tier.
    tiers: list[str] | None = Field(default=None, max_length=50)
    excluded_user_ids: list[uuid.UUID] = Field(default_factory=list, max_length=10_000)
    allow_multiple_wins: bool = False


class DrawCreate(DrawRules):
    """Body of POST /activities/{id}/draws."""

    title: str = Field(min_length=1, max_length=200)
    prizes: list[PrizeCreate] = Field(min_length=1, max_length=50)


class DrawUpdate(EventsModel):
    """Body of PATCH /draws/{id}: rules and prizes, only while the draw is open (else 409)."""

    title: str | None = Field(default=None, min_length=1, max_length=200)
    checked_in_only: bool | None = None
    tiers: list[str] | None = Field(default=None, max_length=50)
    excluded_user_ids: list[uuid.UUID] | None = Field(default=None, max_length=10_000)
    allow_multiple_wins: bool | None = None
    prizes: list[PrizeCreate] | None = Field(default=None, min_length=1, max_length=50)


class RedrawRequest(EventsModel):
    """Body of POST /draws/{id}/redraws: the winner who is absent."""

    registration_id: uuid.UUID


class Draw(EventsModel, table=True):
    """A draw at an activity; after commit its eligible list and seed never change."""

    __tablename__ = "draws"

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    activity_id: uuid.UUID = Field(foreign_key="activities.id", index=True)
    community_id: uuid.UUID
    title: str = Field(max_length=200)
    state: DrawState = Field(
        default=DrawState.open, sa_type=String(20), sa_column_kwargs={"server_default": "open"}
    )
    checked_in_only: bool = True
    tiers: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    excluded_user_ids: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    allow_multiple_wins: bool = False
    # Fixed at commit: sorted registration ids, their SHA-256, and SHA-256(seed).
    eligible: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    eligible_sha256: str | None = Field(default=None, max_length=64)
    commitment: str | None = Field(default=None, max_length=64)
    # The secret seed (hex), drawn at commit, shown to nobody until the reveal.
    seed: str | None = Field(default=None, max_length=64)
    # Re-draws in order: [{"prize_id", "absent_registration_id"}], replayed by the verifier.
    redraws: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    created_by: uuid.UUID
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    committed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    revealed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class Prize(EventsModel, table=True):
    """One prize of a draw; `position` is the order prizes are drawn in."""

    __tablename__ = "draw_prizes"
    __table_args__ = (UniqueConstraint("draw_id", "position", name="uq_draw_prize_position"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    draw_id: uuid.UUID = Field(foreign_key="draws.id")
    name: str = Field(max_length=200)
    count: int
    position: int


class DrawWinner(EventsModel, table=True):
    """One pick of the draw's stream, in announcement order (`ordinal`)."""

    __tablename__ = "draw_winners"
    __table_args__ = (
        UniqueConstraint("draw_id", "ordinal", name="uq_draw_winner_ordinal"),
        UniqueConstraint("draw_id", "prize_id", "registration_id", name="uq_draw_winner_prize"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    draw_id: uuid.UUID = Field(foreign_key="draws.id")
    prize_id: uuid.UUID = Field(foreign_key="draw_prizes.id")
    registration_id: uuid.UUID
    user_id: uuid.UUID
    ordinal: int
    counter: int
    # The absent winner this pick replaced (a re-draw), if any.
    replaces: uuid.UUID | None = None
    absent: bool = False
    drawn_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class PrizePublic(EventsModel):
    """A prize as clients see it."""

    id: uuid.UUID
    name: str
    count: int
    position: int


class WinnerPublic(EventsModel):
    """A winner as clients see it."""

    prize_id: uuid.UUID
    registration_id: uuid.UUID
    user_id: uuid.UUID
    counter: int
    replaces: uuid.UUID | None
    absent: bool


class DrawPublic(EventsModel):
    """A draw as clients see it (the seed only once revealed)."""

    id: uuid.UUID
    activity_id: uuid.UUID
    community_id: uuid.UUID
    title: str
    state: DrawState
    checked_in_only: bool
    tiers: list[str] | None
    excluded_user_ids: list[uuid.UUID]
    allow_multiple_wins: bool
    prizes: list[PrizePublic]
    eligible_count: int | None
    eligible_sha256: str | None
    commitment: str | None
    seed: str | None
    winners: list[WinnerPublic]
    created_at: UtcDatetime
    committed_at: UtcDatetime | None
    revealed_at: UtcDatetime | None
    completed_at: UtcDatetime | None


class DrawProof(EventsModel):
    """Everything a participant needs to rerun the draw (draws/verify.py reads it)."""

    algorithm: str
    draw_id: uuid.UUID
    activity_id: uuid.UUID
    state: DrawState
    commitment: str | None
    eligible_sha256: str | None
    eligible: list[str] | None
    seed: str | None
    allow_multiple_wins: bool
    prizes: list[dict[str, Any]]
    redraws: list[dict[str, Any]]
    winners: list[dict[str, Any]]
