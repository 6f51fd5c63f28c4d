"""Events of the sanction ladder (subjects `<prefix>.moderation.sanction.<fact>.v<N>`).

Every payload names the community, the member concerned (`user_id`) and the moderator who
acted (`actor_id`, None when the ladder or the clock acted), and the item when there is one, so
metrics, the audit log and evidence can use them without knowing each event.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from servicekit.events import Event, event_type


@event_type("moderation.sanction.applied.v2")
class SanctionAppliedV2(Event):
    """A sanction was applied to a member: warning, mute, removal or ban.

    v2 of `sanction.applied` (v1 had no `ban` and no notice fields; v1 is no longer published).
    Members applies it: a warning is a notice, a mute sets `muted_until`, a removal ends the
    membership, a ban ends it and refuses rejoining. `notice` is what the member is told: what,
    why (the offending item quoted), until when and how to appeal (`appeal_path`, through the
    gateway at /api/moderation).
    """

    sanction_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    actor_id: uuid.UUID | None = None
    level: Literal["warning", "mute", "removal", "ban"]
    cause: str
    points: int = 0
    active_points: int = 0
    reason: str
    severity: str | None = None
    evidence_ref: str
    item_type: str | None = None
    item_id: uuid.UUID | None = None
    quote: str | None = None
    muted_until: datetime | None = None
    expires_at: datetime | None = None
    appeal_path: str
    notice: str
    applied_at: datetime


@event_type("moderation.sanction.expired.v1")
class SanctionExpired(Event):
    """A sanction ran out by itself: a mute ended (members lifts it), a warning's points lapsed.

    Published once per sanction, however many replicas run the expiry pass.
    """

    sanction_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    actor_id: uuid.UUID | None = None
    level: Literal["warning", "mute", "removal", "ban"]
    points: int = 0
    expired_at: datetime


@event_type("moderation.sanction.lifted.v1")
class SanctionLifted(Event):
    """A sanction was undone (`outcome` lifted) or lessened (`reduced`), by appeal or moderator.

    Members restores what it took: a lifted mute ends (a reduced one ends at `muted_until`), a
    lifted removal or ban reinstates the membership. Warning points stop counting
    (`points_removed`).
    """

    sanction_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    actor_id: uuid.UUID | None = None
    level: Literal["warning", "mute", "removal", "ban"]
    outcome: Literal["lifted", "reduced"]
    reason: str
    points_removed: int = 0
    muted_until: datetime | None = None
    appeal_id: uuid.UUID | None = None
    lifted_at: datetime
