"""Events of care journeys (subjects `<prefix>.members.<entity>.<fact>.v<N>`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from servicekit.events import Event, event_type


@event_type("members.care.nudge_sent.v1")
class CareNudgeSent(Event):
    """A quiet member was nudged (step `first` or `follow_up`) by a care journey."""

    journey_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    trigger: str
    step: str
    sent_at: datetime


@event_type("members.member.won_back.v1")
class MemberWonBack(Event):
    """A member nudged by a care journey was active again within the win-back window."""

    journey_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    trigger: str
    nudges_sent: int
    started_at: datetime
    won_back_at: datetime
    days_to_win_back: float
