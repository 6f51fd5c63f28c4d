"""Events evidence publishes."""

from __future__ import annotations

import uuid
from datetime import datetime

from servicekit.events import Event, event_type


@event_type("moderation.legal_hold.placed.v1")
class LegalHoldPlaced(Event):
    """A legal hold suspends evidence deletion for an item (or, without one, a community)."""

    hold_id: uuid.UUID
    community_id: uuid.UUID
    item_type: str | None = None
    item_id: uuid.UUID | None = None
    reason: str
    actor_id: uuid.UUID
    placed_at: datetime


@event_type("moderation.legal_hold.released.v1")
class LegalHoldReleased(Event):
    """A legal hold was released; its evidence follows the retention policy again."""

    hold_id: uuid.UUID
    community_id: uuid.UUID
    item_type: str | None = None
    item_id: uuid.UUID | None = None
    actor_id: uuid.UUID
    released_at: datetime


@event_type("moderation.evidence.retention_set.v1")
class EvidenceRetentionSet(Event):
    """A community's team set how many days evidence is kept."""

    community_id: uuid.UUID
    days: int
    actor_id: uuid.UUID
    set_at: datetime


@event_type("moderation.evidence.purged.v1")
class EvidencePurged(Event):
    """Evidence past its community's retention (and under no legal hold) was deleted."""

    community_id: uuid.UUID | None = None
    count: int
    older_than: datetime
    purged_at: datetime


@event_type("moderation.case.exported.v1")
class CaseExported(Event):
    """A case (an item, its evidence and audit records) was exported as a signed bundle."""

    community_id: uuid.UUID
    item_type: str
    item_id: uuid.UUID
    actor_id: uuid.UUID
    sha256: str
    key_id: str
    exported_at: datetime
