"""Reminders: registrants of an activity that starts soon are announced once, on any replica count.

The scheduler runs inside the service (a background loop); `registration.reminder_due.v1` is
what members turns into an inbox notification. The replica test runs a second runtime's pass on
the same database at the same moment.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col

from hearth_events.app import definition
from hearth_events.models import CommunityMembership, Registration
from hearth_events.service import remind_due
from servicekit.ids import utcnow
from servicekit.runtime import ServiceRuntime
from servicekit.testing.harness import (
    Broker,
    Identities,
    RunningService,
    eventually,
)
from servicekit.testing.plugin import Launch

OPERATOR = uuid.UUID("00000000-0000-7000-8000-000000000001")
REMINDER = "hearth.events.registration.reminder_due.v1"


async def _activity(
    events: RunningService, identities: Identities, community_id: uuid.UUID, starts_in: timedelta
) -> dict[str, Any]:
    starts = utcnow() + starts_in
    r = await events.client.post(
        "/activities",
        json={
            "community_id": str(community_id),
            "title": "Roadmap review",
            "kind": "online_lecture",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=1)).isoformat(),
            "capacity": 20,
            "online_url": "https://meet.example.com/roadmap",
        },
        headers=identities.headers(OPERATOR, "operator"),
    )
    assert r.status_code == 201, r.text
    return r.json()


async def _register(
    events: RunningService, identities: Identities, activity_id: str, user: uuid.UUID
) -> None:
    r = await events.client.post(
        f"/activities/{activity_id}/registrations", headers=identities.headers(user)
    )
    assert r.status_code == 201, r.text


async def test_registrants_are_reminded_once_before_the_start(
    launch: Launch,
    identities: Identities,
    directory: Any,
    broker: Broker,
    stream_events: Any,
    subject_prefix: str,
) -> None:
    events = await launch(definition, reminder_tick_seconds=0.2, reminder_lead_hours=24)
    running = [t.get_name() for t in events.runtime._background if not t.done()]
    assert "reminder_scheduler" in running  # the service runs the scheduler itself
    community_id, users = await directory.community(events, members=4)
    soon = await _activity(events, identities, community_id, timedelta(hours=2))
    later = await _activity(events, identities, community_id, timedelta(days=3))
    for user in users[:3]:
        await _register(events, identities, soon["id"], user)
    for user in (users[0], users[3]):
        await _register(events, identities, later["id"], user)
    subject = f"{subject_prefix}.events.registration.reminder_due.v1"

    async def reminded() -> list:
        found = await stream_events(subject)
        assert len(found) >= 3
        return found

    await eventually(reminded, timeout=20)
    await asyncio.sleep(0.8)  # several more passes: nothing goes out twice
    found = await stream_events(subject)
    assert sorted(e.data["user_id"] for e in found) == sorted(str(u) for u in users[:3])
    for event in found:
        assert event.type == REMINDER and event.subject == soon["id"]
        assert event.data["activity_id"] == soon["id"]
        assert event.data["community_id"] == str(community_id)
        assert event.data["title"] == "Roadmap review"
        assert event.data["online_url"] == "https://meet.example.com/roadmap"

    # The activity three days away is not due yet. One of its registrants leaves the community
    # before it is: passed over when its turn comes, not reminded.
    leaver = users[3]
    await directory.membership(community_id, leaver, status="left")

    async def left() -> bool:
        async with events.runtime.db.session() as session:
            row = await session.get(CommunityMembership, (community_id, leaver))
            return row is not None and row.status == "left"

    await eventually(left)
    async with events.runtime.db.session() as session:
        rows = (
            (
                await session.execute(
                    select(Registration).where(
                        col(Registration.activity_id) == uuid.UUID(later["id"])
                    )
                )
            )
            .scalars()
            .all()
        )
    assert [r.reminded_at for r in rows] == [None, None]
    lead, due = timedelta(hours=24), utcnow() + timedelta(days=2, hours=1)
    assert await remind_due(events.runtime, now=due, lead=lead) == 1
    assert await remind_due(events.runtime, now=due, lead=lead) == 0
    found = await stream_events(subject)
    assert [e.data["user_id"] for e in found if e.data["activity_id"] == later["id"]] == [
        str(users[0])
    ]


async def test_two_replicas_announce_each_reminder_once(
    events: RunningService, identities: Identities, directory: Any
) -> None:
    community_id, users = await directory.community(events, members=10)
    activity = await _activity(events, identities, community_id, timedelta(days=3))
    for user in users:
        await _register(events, identities, activity["id"], user)
    now, lead = utcnow() + timedelta(days=2, hours=12), timedelta(hours=24)
    # A second replica (own engine and pool) running its pass at the same moment: on PostgreSQL
    # each claims registrations with FOR UPDATE SKIP LOCKED on its own connection.
    replica = ServiceRuntime(definition, events.runtime.settings)
    try:
        counts = await asyncio.gather(
            *(
                remind_due(rt, now=now, lead=lead, batch=3)
                for rt in (events.runtime, replica, replica)
            )
        )
        while (more := await remind_due(replica, now=now, lead=lead, batch=3)) > 0:
            counts.append(more)
    finally:
        await replica.db.dispose()
    assert sum(counts) == 10
    tables = events.runtime.tables
    async with events.runtime.db.session() as session:
        announced = (
            await session.execute(
                select(func.count())
                .select_from(tables.outbox)
                .where(tables.outbox.c.event_type == REMINDER)
            )
        ).scalar_one()
        unreminded = (
            await session.execute(
                select(func.count())
                .select_from(Registration)
                .where(col(Registration.reminded_at).is_(None))
            )
        ).scalar_one()
    assert announced == 10 and unreminded == 0
