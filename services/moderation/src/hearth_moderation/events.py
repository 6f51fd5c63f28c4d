"""Events moderation publishes (subjects `<prefix>.moderation.<entity>.<fact>.v<N>`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from servicekit.events import Event, event_type


@event_type("moderation.screening.completed.v1")
class ScreeningCompleted(Event):
    """Automatic screening decided on a target: `approved`, or `held` for review with reasons.

    Later fields are optional additions (v1 stays compatible): `verdict` is `allow` or the most
    severe action hit (block, require_approval, flag, censor, tag; block and require_approval
    hold), `rule_set_version` the community's rule-set version that decided (0: platform defaults
    only), `hits` every hit (rule, kind, action, start, end, text, reason, tag; offsets in the
    screened text `title + "\n" + body`), `tags` the tags to apply, `censored_text` the text
    with censor hits replaced when there are any.
    """

    screening_id: uuid.UUID
    target_type: str
    target_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID | None = None
    decision: str
    reasons: list[str]
    screened_at: datetime
    verdict: str = "allow"
    rule_set_version: int = 0
    hits: list[dict[str, Any]] = []
    tags: list[str] = []
    censored_text: str | None = None


@event_type("moderation.rule_set.published.v1")
class RuleSetPublished(Event):
    """A community's team published a new version of its rule set (screening uses it from now)."""

    rule_set_id: uuid.UUID
    community_id: uuid.UUID
    version: int
    author_id: uuid.UUID | None = None
    words: int
    regexes: int
    detectors: list[str]
    published_at: datetime


@event_type("moderation.sanction.applied.v1")
class SanctionApplied(Event):
    """A sanction on the ladder (warning → mute → removal) was applied to a community member.

    Superseded by `sanction.applied.v2` (hearth_moderation.sanctions.events: adds `ban`, the
    moderator, the item and the member's notice); moderation no longer publishes v1, and its
    consumers read both while old events may still be delivered.

    `evidence_ref` points at moderation's record (report, screening, decision) that justifies it;
    members keeps it on the membership so that a removal is never silent or unexplained.
    """

    sanction_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    level: Literal["warning", "mute", "removal"]
    reason: str
    evidence_ref: str
    muted_until: datetime | None = None
    applied_at: datetime
