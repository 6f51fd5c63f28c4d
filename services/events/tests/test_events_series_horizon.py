"""A series' rolling horizon: occurrences beyond it appear as time passes, once, on any replica.

Real database; the scheduler step is called with the clock moved on, as its loop would call it
weeks later, and twice at once as two replicas would.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

from sqlmodel import col, select

from hearth_events.models import Activity
from hearth_events.series.horizon import extend_series
from hearth_events.series.models import ActivitySeries
from servicekit.ids import utcnow
from servicekit.testing.harness import Identities, RunningService

OPERATOR = uuid.UUID("00000000-0000-7000-8000-000000000001")


async def starts_of(events: RunningService, series_id: str) -> list[datetime]:
    async with events.runtime.db.session() as session:
        stmt = (
            select(Activity.starts_at)
            .where(col(Activity.series_id) == uuid.UUID(series_id))
            .order_by(col(Activity.starts_at))
        )
        return list((await session.exec(stmt)).all())


async def test_occurrences_beyond_the_horizon_appear_once_as_time_passes(
    events: RunningService, identities: Identities, directory, published
) -> None:
    community_id, _ = await directory.community(events)
    first = (utcnow() + timedelta(days=1)).replace(microsecond=0)
    skipped = first + timedelta(weeks=4)
    r = await events.client.post(
        "/series",
        json={
            "activity": {
                "community_id": str(community_id),
                "title": "Weekly sync",
                "kind": "online_lecture",
                "starts_at": first.isoformat(),
                "ends_at": (first + timedelta(hours=1)).isoformat(),
                "capacity": 5,
                "timezone": "UTC",
            },
            "rrule": "FREQ=WEEKLY",
            "exdates": [skipped.isoformat()],
            "horizon_days": 14,
        },
        headers=identities.headers(OPERATOR, "operator"),
    )
    assert r.status_code == 201, r.text
    series = r.json()
    week = timedelta(weeks=1)
    assert [s.replace(tzinfo=None) for s in await starts_of(events, series["id"])] == [
        (first + i * week).replace(tzinfo=None) for i in range(3)
    ]
    rt = events.runtime
    # Nothing new while the horizon still covers what exists.
    assert await extend_series(rt, now=utcnow()) == 0

    # Two weeks on, two replicas run the step at the same moment: one creates, once.
    later = utcnow() + 2 * week + timedelta(days=2)
    created = await asyncio.gather(extend_series(rt, now=later), extend_series(rt, now=later))
    assert sorted(created) == [0, 1]  # week 3 (week 4 is an exception)
    starts = [s.replace(tzinfo=None) for s in await starts_of(events, series["id"])]
    assert starts == [(first + i * week).replace(tzinfo=None) for i in range(4)]
    # A week later the next one comes within the horizon.
    later += week
    assert await extend_series(rt, now=later) == 1
    starts = [s.replace(tzinfo=None) for s in await starts_of(events, series["id"])]
    expected = [(first + i * week).replace(tzinfo=None) for i in range(6) if i != 4]
    assert starts == expected, (starts, expected)
    # The new occurrences are ordinary published activities of the series, announced as such.
    announced = await published("events.activity.published.v1", 5)
    assert {a.data["community_id"] for a in announced} == {str(community_id)}
    r = await events.client.get(
        f"/series/{series['id']}", headers=identities.headers(OPERATOR, "operator")
    )
    assert len(r.json()["occurrences"]) == 5
    # Running again at the same time changes nothing.
    assert await extend_series(rt, now=later) == 0
    async with rt.db.session() as session:
        row = await session.get(ActivitySeries, uuid.UUID(series["id"]))
        assert row is not None and row.materialized_until is not None


async def test_a_long_outage_does_not_create_occurrences_in_the_past(
    events: RunningService, identities: Identities, directory
) -> None:
    community_id, _ = await directory.community(events)
    first = (utcnow() + timedelta(days=1)).replace(microsecond=0)
    r = await events.client.post(
        "/series",
        json={
            "activity": {
                "community_id": str(community_id),
                "title": "Monthly",
                "kind": "offline_meetup",
                "starts_at": first.isoformat(),
                "ends_at": (first + timedelta(hours=1)).isoformat(),
                "capacity": 5,
                "timezone": "UTC",
            },
            "rrule": "FREQ=WEEKLY",
            "horizon_days": 7,
        },
        headers=identities.headers(OPERATOR, "operator"),
    )
    assert r.status_code == 201, r.text
    before = await starts_of(events, r.json()["id"])
    # Ten weeks without a pass: only the occurrences from then on, within the horizon, appear.
    later = utcnow() + timedelta(weeks=10)
    assert await extend_series(events.runtime, now=later) == 1
    starts = await starts_of(events, r.json()["id"])
    [new] = [s for s in starts if s not in before]
    assert (
        later.replace(tzinfo=None)
        < new.replace(tzinfo=None)
        <= (later + timedelta(days=7)).replace(tzinfo=None)
    )
