"""A reusable generator of community activity: joins and member actions with realistic skew.

`generate(Spec(...))` yields `Generated` events in time order: every member's
`members.member.joined.v1` (with an invite channel), then their posts, comments, shares,
registrations and attendance. The skew is what communities show: activity per member follows a
Zipf-like law (a few heavy posters, a long tail of lurkers who rarely act), weekends are quieter
(weekly seasonality) and members join over the whole period (front-loaded). Deterministic for
a seed. `envelope(g)` turns one into the CloudEvents envelope its producer would publish (the
payload fields are the producers' own; tests check them with servicekit.testing.contracts).

Used by `make bench` (bench/metrics.py: 5,000,000 events from 200,000 members over 180 days)
and by metrics' tests at small scale (brute-force checks of DAU/MAU and retention).
"""

from __future__ import annotations

import bisect
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from servicekit.events import Envelope

JOINED = "hearth.members.member.joined.v1"
ACTIONS: tuple[tuple[str, float], ...] = (
    ("hearth.content.comment.created.v1", 0.45),
    ("hearth.content.post.submitted.v1", 0.15),
    ("hearth.content.post.shared.v1", 0.10),
    ("hearth.events.registration.confirmed.v1", 0.18),
    ("hearth.events.attendance.checked_in.v1", 0.12),
)
CHANNELS: tuple[str | None, ...] = ("invite", "link", "search", None)
WEEKDAY_LOAD = (1.0, 1.05, 1.05, 1.0, 0.9, 0.55, 0.5)  # Monday .. Sunday


@dataclass(frozen=True)
class Spec:
    """What to generate: `events` in all (joins included), over `days` from `start`."""

    members: int = 200_000
    days: int = 180
    events: int = 5_000_000
    communities: int = 4
    seed: int = 7
    start: datetime = datetime(2026, 1, 5, tzinfo=UTC)
    zones: tuple[str, ...] = ("UTC", "Asia/Shanghai", "America/New_York", "Europe/Berlin")
    community_ids: tuple[uuid.UUID, ...] = field(default=())

    def ids(self) -> list[uuid.UUID]:
        """The communities' ids (fixed for the seed unless given)."""
        if self.community_ids:
            return list(self.community_ids)
        rng = random.Random(self.seed * 7919)
        return [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(self.communities)]


@dataclass(frozen=True)
class Generated:
    """One generated event."""

    type: str
    community_id: uuid.UUID
    user_id: uuid.UUID
    at: datetime
    channel: str | None = None
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)


def generate(spec: Spec) -> Iterator[Generated]:
    """The events of the spec, in time order (deterministic for the seed)."""
    rng = random.Random(spec.seed)
    communities = spec.ids()
    users = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(spec.members)]
    home = [communities[min(int(rng.paretovariate(1.2)) - 1, len(communities) - 1)] for _ in users]
    # Join offsets in seconds: a third were there at the start (first day), the rest join over
    # the period, more early than late.
    period = spec.days * 86400
    joins = sorted(
        (int(rng.random() * 86400) if rng.random() < 0.33 else int(period * rng.random() ** 1.6))
        for _ in users
    )
    # Activity weight per member (Zipf-like, shuffled against join time): heavy posters few.
    weights = [1.0 / (rank + 1) ** 1.05 for rank in range(spec.members)]
    rng.shuffle(weights)
    cumulative: list[float] = []
    total = 0.0
    for w in weights:
        total += w
        cumulative.append(total)
    actions = spec.events - spec.members
    loads = [WEEKDAY_LOAD[(spec.start + timedelta(days=d)).weekday()] for d in range(spec.days)]
    # Per day, load follows the weekday times the members joined by then.
    joined_by = [bisect.bisect_right(joins, (d + 1) * 86400 - 1) for d in range(spec.days)]
    shares = [loads[d] * max(joined_by[d], 1) for d in range(spec.days)]
    scale = actions / sum(shares)
    kinds = [k for k, _ in ACTIONS]
    kind_cum: list[float] = []
    acc = 0.0
    for _, p in ACTIONS:
        acc += p
        kind_cum.append(acc)
    next_join = 0
    for d in range(spec.days):
        day_start = d * 86400
        count = round(shares[d] * scale)
        moments = sorted(day_start + int(rng.random() * 86400) for _ in range(count))
        for moment in moments:
            while next_join < spec.members and joins[next_join] <= moment:
                yield _join(spec, rng, users, home, joins, next_join)
                next_join += 1
            # A member who has joined by now, by weight.
            upto = bisect.bisect_right(joins, moment)
            if upto == 0:
                continue
            who = bisect.bisect_left(cumulative, rng.random() * cumulative[upto - 1], 0, upto)
            kind = kinds[bisect.bisect_left(kind_cum, rng.random() * acc)]
            at = spec.start + timedelta(seconds=moment)
            yield Generated(kind, home[who], users[who], at, event_id=_id(rng))
    while next_join < spec.members:
        yield _join(spec, rng, users, home, joins, next_join)
        next_join += 1


def _id(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _join(
    spec: Spec,
    rng: random.Random,
    users: list[uuid.UUID],
    home: list[uuid.UUID],
    joins: list[int],
    i: int,
) -> Generated:
    channel = CHANNELS[min(int(rng.random() * 4.6), 3)]
    at = spec.start + timedelta(seconds=joins[i])
    return Generated(JOINED, home[i], users[i], at, channel, _id(rng))


def payload(g: Generated) -> dict[str, Any]:
    """The event's data as its producer defines it."""
    c, u, at = str(g.community_id), str(g.user_id), g.at.isoformat()
    rid = str(uuid.UUID(int=g.event_id.int ^ 1))
    if g.type == JOINED:
        return {
            "community_id": c,
            "user_id": u,
            "membership_id": rid,
            "role": "member",
            "joined_at": at,
            "channel": g.channel,
        }
    if g.type == "hearth.content.comment.created.v1":
        return {
            "comment_id": rid,
            "post_id": rid,
            "community_id": c,
            "author_id": u,
            "parent_id": None,
            "body": "nice",
            "created_at": at,
        }
    if g.type == "hearth.content.post.submitted.v1":
        return {
            "post_id": rid,
            "community_id": c,
            "author_id": u,
            "title": "t",
            "body": "b",
            "format": "text",
            "url": None,
            "submitted_at": at,
            "round": 0,
        }
    if g.type == "hearth.content.post.shared.v1":
        return {
            "post_id": rid,
            "share_id": rid,
            "community_id": c,
            "to_community_id": c,
            "author_id": rid,
            "sharer_id": u,
            "shared_at": at,
        }
    if g.type == "hearth.events.registration.confirmed.v1":
        return {
            "registration_id": rid,
            "activity_id": rid,
            "community_id": c,
            "user_id": u,
            "registered_at": at,
        }
    if g.type == "hearth.events.attendance.checked_in.v1":
        return {"activity_id": rid, "community_id": c, "user_id": u, "checked_in_at": at}
    raise ValueError(g.type)


def envelope(g: Generated) -> Envelope:
    """The envelope the producer's relay would publish."""
    context = g.type.split(".")[1]
    return Envelope(
        id=g.event_id,
        source=f"/hearth/{context}",
        type=g.type,
        time=g.at,
        subject=str(g.community_id),
        data=payload(g),
    )
