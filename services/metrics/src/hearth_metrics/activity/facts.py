"""What metrics reads from every context's events: the facts the activity tables are made of.

One tolerant reading per event type (only the fields used; extra ignored), each event giving at
most one fact: an activity of a member (what, when), a first join (when, through which invite
channel), or a step of a care journey. Everything else on the streams is acknowledged and
ignored. Times come from the payload's own timestamp (when it happened), not from delivery.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from servicekit.events import Envelope

ACTIVITY: dict[str, tuple[str, str, str]] = {
    # CloudEvents type: (activity kind = a column of the day tables, person field, time field)
    "hearth.content.post.submitted.v1": ("posts", "author_id", "submitted_at"),
    "hearth.content.comment.created.v1": ("comments", "author_id", "created_at"),
    "hearth.content.post.shared.v1": ("shares", "sharer_id", "shared_at"),
    "hearth.content.reaction.added.v1": ("reactions", "member_id", "reacted_at"),
    # An anonymous poll's vote names no voter: it counts in the poll, not as someone's activity.
    "hearth.content.poll.voted.v1": ("votes", "voter_id", "voted_at"),
    "hearth.events.registration.confirmed.v1": ("registrations", "user_id", "registered_at"),
    "hearth.events.attendance.checked_in.v1": ("attendance", "user_id", "checked_in_at"),
}
"""Activity facts (content's reaction.added and poll.voted give the reactions and votes)."""

JOINED = "hearth.members.member.joined.v1"
NUDGE_SENT = "hearth.members.care.nudge_sent.v1"
WON_BACK = "hearth.members.member.won_back.v1"
FACT_TYPES = frozenset({*ACTIVITY, JOINED, NUDGE_SENT, WON_BACK})
"""The event types that can carry a fact (every other type changes no activity table)."""
CONTEXTS = ("members", "content", "events", "moderation")
"""The streams the ingest reads (moderation has no activity fact yet; read for metrics-biz)."""

NO_CHANNEL = "direct"
"""The channel of a join that names none (members' joined.channel is null: no invite)."""


@dataclass(frozen=True, slots=True)
class Fact:
    """One thing that happened to one member of one community at one time."""

    kind: str  # "activity" | "joined" | "care_started" | "won_back"
    community_id: uuid.UUID
    user_id: uuid.UUID
    at: datetime
    what: str = ""  # the activity kind (posts, comments, ...) or the join channel
    journey_id: uuid.UUID | None = None


_UUIDS: dict[str, uuid.UUID] = {}
"""Parsed ids by their text: the same communities and members come back in every event."""


def _uuid(value: Any) -> uuid.UUID | None:
    if not value:
        return None
    text = str(value)
    parsed = _UUIDS.get(text)
    if parsed is None:
        try:
            parsed = uuid.UUID(text)
        except ValueError:
            return None
        if len(_UUIDS) >= 1_000_000:  # bounded: a cache, not a registry
            _UUIDS.clear()
        _UUIDS[text] = parsed
    return parsed


def _time(value: Any, fallback: datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    try:
        parsed = datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        return fallback
    return parsed if parsed.tzinfo else fallback


def fact_of(envelope: Envelope) -> Fact | None:
    """The fact an event carries for metrics, or None."""
    return fact_from(envelope.type, envelope.data or {}, envelope.time)


def fact_from(ce_type: str, data: dict[str, Any], time: datetime) -> Fact | None:
    """The fact of an event given its type, payload and envelope time (a rebuild's fast path:
    no envelope is built)."""
    community = _uuid(data.get("community_id"))
    if community is None:
        return None
    if (spec := ACTIVITY.get(ce_type)) is not None:
        what, person, when = spec
        if what == "posts" and int(data.get("round") or 0) > 0:
            return None  # a resubmission after a rejection is the same post again
        if what == "votes" and data.get("changed"):
            return None  # a changed vote is the same vote again
        user = _uuid(data.get(person))
        if user is None:
            return None
        return Fact("activity", community, user, _time(data.get(when), time), what)
    user = _uuid(data.get("user_id"))
    if user is None:
        return None
    if ce_type == JOINED:
        channel = str(data.get("channel") or NO_CHANNEL)[:64]
        return Fact("joined", community, user, _time(data.get("joined_at"), time), channel)
    if ce_type == NUDGE_SENT and data.get("step") == "first":
        at = _time(data.get("sent_at"), time)
        return Fact(
            "care_started",
            community,
            user,
            at,
            str(data.get("trigger") or "inactive")[:40],
            _uuid(data.get("journey_id")),
        )
    if ce_type == WON_BACK:
        at = _time(data.get("won_back_at"), time)
        return Fact(
            "won_back",
            community,
            user,
            at,
            str(data.get("trigger") or "inactive")[:40],
            _uuid(data.get("journey_id")),
        )
    return None
