"""Events of the incentive ledger (subjects `<prefix>.members.<entity>.<fact>.v<N>`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from servicekit.events import Event, event_type


@event_type("members.points.awarded.v1")
class PointsAwarded(Event):
    """Points were added to (or, for sanctions and deductions, taken from) a member's balance."""

    entry_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    kind: str
    points: int
    balance: int
    reason: str
    source_event_id: uuid.UUID | None = None
    source_event_type: str | None = None
    awarded_at: datetime


@event_type("members.badge.granted.v1")
class BadgeGranted(Event):
    """A member received a badge or title (automatically by rule, or by an admin)."""

    badge_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    name: str
    kind: str
    automatic: bool
    granted_by: uuid.UUID | None = None
    granted_at: datetime


@event_type("members.badge.revoked.v1")
class BadgeRevoked(Event):
    """A badge or title was taken back from a member."""

    badge_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    name: str
    kind: str
    revoked_by: uuid.UUID
    reason: str
    revoked_at: datetime


@event_type("members.perk.redeemed.v1")
class PerkRedeemed(Event):
    """A member spent points on a perk (fulfilment systems subscribe to this)."""

    redemption_id: uuid.UUID
    perk_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    perk_name: str
    cost: int
    balance: int
    redeemed_at: datetime
