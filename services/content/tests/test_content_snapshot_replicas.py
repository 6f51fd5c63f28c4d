"""Two content replicas sharing one durable consumer converge on members' state.

1,000 membership snapshots (100 memberships, 10 versions each, every field changing) are
published in a shuffled order, with a fifth of them published twice as new messages (a
producer's retry, a republish). Both replicas pull from the same durable consumer over real
NATS into one database, so deliveries interleave and race on the same rows. Afterwards every
row must equal the newest snapshot of its membership: the kernel's versioned upsert decides,
not arrival order. Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta

from sqlmodel import col, select

from hearth_content.app import definition
from hearth_content.models import Membership
from servicekit.events import Envelope
from servicekit.ids import utcnow
from servicekit.testing.harness import Broker, eventually
from servicekit.testing.membership import Snapshots, redelivered
from servicekit.testing.plugin import Launch

ROLES = ["member", "moderator", "admin", "member", "owner"]
STATUSES = ["active", "active", "left", "removed", "banned", "active"]


def _history(snapshots: Snapshots, community_id: uuid.UUID, rng: random.Random) -> list[Envelope]:
    """100 memberships with 10 snapshots each, every version a different state."""
    out: list[Envelope] = []
    now = utcnow()
    for _ in range(100):
        user = uuid.uuid4()
        for _ in range(10):
            mute = rng.random() < 0.3
            out.append(
                snapshots.membership(
                    community_id,
                    user,
                    role=rng.choice(ROLES),
                    status=rng.choice(STATUSES),
                    muted_until=now + timedelta(minutes=rng.randint(1, 999)) if mute else None,
                )
            )
    return out


async def test_two_replicas_converge_over_shuffled_snapshots(
    launch: Launch, any_database_url: str, broker: Broker
) -> None:
    replicas = [await launch(definition, database_url=any_database_url) for _ in range(2)]
    community_id, rng = uuid.uuid4(), random.Random(20261204)
    history = _history(Snapshots(), community_id, rng)
    newest = {(e.data["user_id"]): e.data for e in history}  # later in history = newer version
    messages = history + [redelivered(e) for e in rng.sample(history, 200)]
    rng.shuffle(messages)
    for envelope in messages:
        await broker.publish(envelope)

    pullers = [
        running
        for replica in replicas
        for running in replica.runtime.consumers
        if running.consumer.name == "content__memberships"
    ]
    assert len(pullers) == 2

    async def all_taken() -> bool:
        taken = sum(p.stats["handled"] + p.stats["duplicates"] for p in pullers)
        assert all(p.stats["dead_lettered"] == 0 for p in pullers)
        return taken >= len(messages)

    await eventually(all_taken, timeout=60)
    assert all(p.stats["handled"] > 0 for p in pullers), [p.stats for p in pullers]

    async with replicas[0].runtime.db.session() as session:
        rows = (
            await session.exec(
                select(Membership).where(col(Membership.community_id) == community_id)
            )
        ).all()
    assert len(rows) == 100
    for row in rows:
        want = newest[str(row.user_id)]
        assert row.version == want["version"] == 10
        assert (row.role, row.status) == (want["role"], want["status"])
        want_mute = want["muted_until"] and datetime.fromisoformat(want["muted_until"])
        assert (row.muted_until is None) == (want_mute is None)
        if row.muted_until and want_mute:
            assert abs(row.muted_until - want_mute) < timedelta(milliseconds=1)
