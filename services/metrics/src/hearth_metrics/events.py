"""Events metrics publishes (subjects `<prefix>.metrics.<entity>.<fact>.v<N>`).

`community.measured` is published with every counter change. `member.inactive` and
`member.active` are defined before their producer exists: members consumes them for care
journeys and tiers, and metrics adopts these contracts when it grows inactivity detection.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from servicekit.events import Event, event_type

MetricName = Literal["joins", "posts_submitted", "posts_published", "registrations"]
"""The metrics catalogue: public and stable names (a name is added, never renamed or reused)."""


@event_type("metrics.community.measured.v1")
class CommunityMeasured(Event):
    """A community metric has a new value (`measured_at` orders a community's measurements)."""

    community_id: uuid.UUID
    metric: MetricName
    value: float
    measured_at: datetime


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
