"""Events of profiles (erasure)."""

from __future__ import annotations

import uuid
from datetime import datetime

from servicekit.events import Event, event_type


@event_type("members.member.pseudonymised.v1")
class MemberPseudonymised(Event):
    """A person's profile was wiped at their request; their user id lives on in ledgers."""

    user_id: uuid.UUID
    pseudonymised_at: datetime
