"""Events the audit log publishes."""

from __future__ import annotations

from datetime import datetime

from servicekit.events import Event, event_type


@event_type("moderation.audit.chain_head.v1")
class AuditChainHeadPublished(Event):
    """The audit chain's head as of now: its last record's sequence number and SHA-256.

    A business system that keeps these can later prove the log was not rewritten: `verify` on
    moderation's log must reach the same hash at the same sequence number. Published at most
    once per interval, only when the head moved (`previous_seq`: the head announced before).
    """

    seq: int
    hash: str
    previous_seq: int
    published_at: datetime
