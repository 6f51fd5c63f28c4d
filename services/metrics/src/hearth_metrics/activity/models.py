"""Activity tables: facts per member per day, per community per day with the exact set of active
members (a roaring bitmap), join cohorts per day and invite channel, and care journeys.

Every table in `REBUILT` is derived from the streams alone and is recomputed by a rebuild
(activity/rebuild.py); `member_keys` (the dense member numbers bitmaps hold) is never rebuilt:
numbers stay stable, so a bitmap written before a rebuild means the same people after it.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Column, Date, LargeBinary
from sqlmodel import Field

from hearth_metrics.models import MetricsModel
from servicekit.types import UtcDateTime

KINDS = ("posts", "comments", "reactions", "votes", "registrations", "attendance", "shares")
"""What a member does that counts as activity, each a column of the day tables."""


def _count() -> Any:
    return Field(default=0, sa_column_kwargs={"server_default": "0"})


class MemberKey(MetricsModel, table=True):
    """The dense number of a person in the bitmaps (one per user id, across communities)."""

    __tablename__ = "member_keys"

    n: int | None = Field(default=None, primary_key=True)
    user_id: uuid.UUID = Field(unique=True)


class MemberDay(MetricsModel, table=True):
    """What one member did in one community on one local day (the community's time zone)."""

    __tablename__ = "activity_member_days"

    community_id: uuid.UUID = Field(primary_key=True)
    day: date = Field(sa_column=Column(Date, primary_key=True))
    member: int = Field(primary_key=True)
    posts: int = _count()
    comments: int = _count()
    reactions: int = _count()
    votes: int = _count()
    registrations: int = _count()
    attendance: int = _count()
    shares: int = _count()


class CommunityDay(MetricsModel, table=True):
    """One community's local day: totals, and the exact set of members active that day."""

    __tablename__ = "activity_days"

    community_id: uuid.UUID = Field(primary_key=True)
    day: date = Field(sa_column=Column(Date, primary_key=True))
    posts: int = _count()
    comments: int = _count()
    reactions: int = _count()
    votes: int = _count()
    registrations: int = _count()
    attendance: int = _count()
    shares: int = _count()
    active: int = _count()  # the bitmap's cardinality, kept with it
    # A serialized pyroaring.BitMap of member numbers (member_keys.n) active that day.
    members: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class Cohort(MetricsModel, table=True):
    """The members who first joined a community on one local day, through one invite channel."""

    __tablename__ = "activity_cohorts"

    community_id: uuid.UUID = Field(primary_key=True)
    day: date = Field(sa_column=Column(Date, primary_key=True))
    channel: str = Field(primary_key=True, max_length=64)
    size: int = _count()
    members: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class MemberState(MetricsModel, table=True):
    """One member in one community: first join, channel, last activity, contribution so far."""

    __tablename__ = "activity_members"

    community_id: uuid.UUID = Field(primary_key=True)
    member: int = Field(primary_key=True)
    user_id: uuid.UUID
    joined_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    channel: str | None = Field(default=None, max_length=64)
    last_active_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    contributions: int = _count()


class CareJourney(MetricsModel, table=True):
    """A care journey as members reported it: started (first nudge), won back or not."""

    __tablename__ = "activity_care_journeys"

    journey_id: uuid.UUID = Field(primary_key=True)
    community_id: uuid.UUID  # no index: a rebuild's shadow copy carries none (a small table)
    user_id: uuid.UUID
    trigger: str = Field(default="inactive", max_length=40)
    started_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    won_back_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


REBUILT = (MemberDay, CommunityDay, Cohort, MemberState, CareJourney)
"""The tables a rebuild recomputes from the streams (in this order)."""


# --- What clients read (computed answers; null + a reason where the privacy floor applies) ----


class DailyActivity(MetricsModel):
    """One local day of a community: distinct active members and what they did."""

    day: date
    active: int | None
    posts: int | None
    comments: int | None
    reactions: int | None
    votes: int | None
    registrations: int | None
    attendance: int | None
    shares: int | None
    suppressed: dict[str, str] = {}


class ActiveMembers(MetricsModel):
    """DAU, WAU, MAU and stickiness (DAU/MAU) on one local day."""

    day: date
    window: str
    dau: int | None
    wau: int | None
    mau: int | None
    stickiness: float | None
    suppressed: dict[str, str] = {}


class RetentionCohort(MetricsModel):
    """A join cohort and its Dn retention (`retained`/`rates` keyed by n; null: not yet)."""

    cohort: date
    grain: str
    channel: str | None
    size: int | None
    retained: dict[str, int | None]
    rates: dict[str, float | None]
    suppressed: dict[str, str] = {}


class WinBackRate(MetricsModel):
    """Care journeys started in a range and the share that won the member back."""

    start: date
    end: date
    started: int | None
    won_back: int | None
    rate: float | None
    suppressed: dict[str, str] = {}


class LeaderboardEntry(MetricsModel):
    """A member's contributions over a range."""

    user_id: uuid.UUID
    contributions: int
    posts: int
    comments: int
    reactions: int
    votes: int
    registrations: int
    attendance: int
    shares: int


class MemberDayActivity(MetricsModel):
    """What one member did on one local day."""

    user_id: uuid.UUID
    day: date
    posts: int
    comments: int
    reactions: int
    votes: int
    registrations: int
    attendance: int
    shares: int
