"""Inactivity events (subjects `<prefix>.metrics.member.<fact>.v<N>`).

Members consumes both for care journeys and tiers: `member.inactive` once when a member (or a
top contributor) crosses the community's quiet threshold, `member.active` once when they return.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from servicekit.events import Event, event_type


@event_type("metrics.member.inactive.v1")
class MemberInactive(Event):
    """A member has gone quiet in a community (inactive, or a top contributor gone quiet)."""

    community_id: uuid.UUID
    user_id: uuid.UUID
    kind: Literal["inactive", "quiet_top_contributor"]
    last_active_at: datetime | None = None
    inactive_days: int
    detected_at: datetime


@event_type("metrics.member.active.v1")
class MemberActive(Event):
    """A member was active in a community (the first activity of a day is enough)."""

    community_id: uuid.UUID
    user_id: uuid.UUID
    active_at: datetime
