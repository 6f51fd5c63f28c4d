"""Events the suggestions package publishes (subjects `<prefix>.content.suggestion.<fact>.v1`).

`content.suggestion.accepted.v1` (members' incentives award points for it) stays in
hearth_content.events, where it was first published from.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from servicekit.events import Event, event_type

# Voter ids one status_changed event carries at most: a change of a popular idea is announced
# in several events (`batch` 0..batches-1) so no message grows past NATS' payload limit
# (500 ids ≈ 19 kB of JSON).
VOTERS_PER_EVENT = 500


@event_type("content.suggestion.created.v1")
class SuggestionCreated(Event):
    """A member put an idea in the community's suggestion box."""

    suggestion_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID
    title: str
    created_at: datetime


@event_type("content.suggestion.status_changed.v1")
class SuggestionStatusChanged(Event):
    """The community's team moved an idea along its workflow; its author and voters are told.

    `voter_ids` names the voters to notify (never the author), at most VOTERS_PER_EVENT of them:
    one change with more voters is announced in `batches` events, numbered by `batch`; the
    author rides on batch 0 only, and `voters` is the idea's whole count of voters.
    """

    suggestion_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID
    title: str
    from_status: str
    status: str
    reason: str | None = None
    merged_into_id: uuid.UUID | None = None
    actor_id: uuid.UUID
    voters: int
    voter_ids: list[uuid.UUID]
    batch: int = 0
    batches: int = 1
    changed_at: datetime


@event_type("content.suggestion.voted.v1")
class SuggestionVoted(Event):
    """A member voted for an idea (`voted` false: took their vote back)."""

    suggestion_id: uuid.UUID
    community_id: uuid.UUID
    voter_id: uuid.UUID
    voted: bool
    votes: int
    at: datetime


@event_type("content.suggestion.replied.v1")
class SuggestionReplied(Event):
    """The community's team replied officially to an idea."""

    suggestion_id: uuid.UUID
    reply_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID
    replier_id: uuid.UUID
    replied_at: datetime
