"""Events of the review queue (subjects `<prefix>.moderation.case.<fact>.v<N>`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from servicekit.events import Event, event_type


@event_type("moderation.case.decided.v1")
class CaseDecided(Event):
    """A moderator decided a queue entry (a held item, an item's reports, an appeal).

    `decision` is `uphold` or `dismiss`; `author_reason` is what the member concerned
    (`user_id`: the author or the reported member) is told; members puts it in their inbox.
    Moderators' internal notes are not published.
    """

    entry_id: uuid.UUID
    community_id: uuid.UUID
    kind: str
    item_type: str
    item_id: uuid.UUID
    user_id: uuid.UUID | None = None
    actor_id: uuid.UUID
    decision: str
    author_reason: str | None = None
    decided_at: datetime
