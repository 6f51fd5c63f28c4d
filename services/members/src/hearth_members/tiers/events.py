"""Events of earned tiers (subjects `<prefix>.members.<entity>.<fact>.v<N>`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from servicekit.events import Event, event_type


@event_type("members.tier.changed.v1")
class TierChanged(Event):
    """A member's earned tier changed; `privileges` are what the new tier grants.

    Carrying the privileges lets other contexts keep a read model (content skips the first
    review for members whose privileges include `skip_first_review`). `from_tier == to_tier`
    means the tier stayed but the community changed what it grants.
    """

    community_id: uuid.UUID
    user_id: uuid.UUID
    from_tier: str
    to_tier: str
    privileges: list[str]
    changed_at: datetime
