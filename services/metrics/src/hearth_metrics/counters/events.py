"""Events of the counters (subjects `<prefix>.metrics.<entity>.<fact>.v<N>`).

`community.measured` is published with every counter change (members' goals follow it).
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
