"""Care journeys: metrics reports a quiet member → first nudge; the scheduler's tick (with an
injected clock) sends the follow-up; activity within the window is recorded as a win-back."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from sqlmodel import select

from hearth_members.app import definition
from hearth_members.care.models import CareJourney
from hearth_members.care.service import tick
from members_testkit import PROBLEM, join, make_community, publish, published, staff
from servicekit.events import Envelope
from servicekit.ids import utcnow
from servicekit.runtime import ServiceRuntime
from servicekit.testing.harness import (
    Identities,
    RunningService,
    eventually,
)


async def went_quiet(
    nats_client: Any, prefix: str, cid: str, user: uuid.UUID, kind: str = "inactive"
) -> Envelope:
    """metrics.member.inactive.v1 for the member."""
    return await publish(
        nats_client,
        prefix,
        "hearth.metrics.member.inactive.v1",
        {
            "community_id": cid,
            "user_id": str(user),
            "kind": kind,
            "last_active_at": (utcnow() - timedelta(days=30)).isoformat(),
            "inactive_days": 30,
            "detected_at": utcnow().isoformat(),
        },
    )


async def was_active(nats_client: Any, prefix: str, cid: str, user: uuid.UUID, when: Any) -> None:
    """metrics.member.active.v1 for the member."""
    await publish(
        nats_client,
        prefix,
        "hearth.metrics.member.active.v1",
        {"community_id": cid, "user_id": str(user), "active_at": when.isoformat()},
    )


def handled(members: RunningService, consumer: str, envelope: Envelope):
    """An `eventually` check that a consumer has handled an event (its inbox row exists)."""
    inbox = members.runtime.tables.inbox

    async def check() -> bool:
        async with members.runtime.db.session() as session:
            found = await session.execute(
                select(inbox.c.event_id).where(
                    inbox.c.consumer == consumer, inbox.c.event_id == envelope.id
                )
            )
            return found.first() is not None

    return check


async def journeys(members: RunningService, identities: Identities, cid: str, **params: Any):
    """The community's journeys as the operator sees them."""
    r = await members.client.get(
        f"/communities/{cid}/care-journeys", params=params, headers=staff(identities)
    )
    assert r.status_code == 200, r.text
    return r.json()["items"]


def journey_count(members: RunningService, identities: Identities, cid: str, n: int, **params: Any):
    """An `eventually` check on the number of journeys."""

    async def check() -> list[dict]:
        found = await journeys(members, identities, cid, **params)
        assert len(found) == n, found
        return found

    return check


async def inbox(members: RunningService, identities: Identities, user: uuid.UUID) -> list[dict]:
    """The member's care notifications."""
    r = await members.client.get("/me/notifications", headers=identities.headers(user))
    assert r.status_code == 200, r.text
    return [n for n in r.json()["items"] if n["kind"] == "care_nudge"]


async def test_journey_nudges_follows_up_and_records_the_win_back(
    members: RunningService, identities: Identities, nats_client: Any, subject_prefix: str
) -> None:
    cid = await make_community(members, identities)
    user = uuid.uuid4()
    await join(members, identities, cid, user)
    r = await members.client.put(
        f"/communities/{cid}/care-settings",
        json={"enabled": True, "follow_up_after_hours": 48, "win_back_days": 10},
        headers=staff(identities),
    )
    assert r.status_code == 200, r.text
    await went_quiet(nats_client, subject_prefix, cid, user, "quiet_top_contributor")
    [journey] = await eventually(journey_count(members, identities, cid, 1))
    assert journey["status"] == "nudged" and journey["trigger"] == "quiet_top_contributor"
    [first] = await inbox(members, identities, user)
    assert first["community_id"] == cid and first["data"]["step"] == "first"
    # Metrics saying it again while the journey is open does not start a second one.
    again = await went_quiet(nats_client, subject_prefix, cid, user)
    await eventually(handled(members, "members__care", again))
    assert len(await journeys(members, identities, cid)) == 1

    # The scheduler's tick with an injected clock: nothing is due yet, then the follow-up.
    started = utcnow()
    assert (await tick(members.runtime, now=started + timedelta(hours=47))).follow_ups == 0
    done = await tick(members.runtime, now=started + timedelta(hours=49))
    assert done.follow_ups == 1
    assert (await tick(members.runtime, now=started + timedelta(hours=50))).follow_ups == 0
    [journey] = await journeys(members, identities, cid)
    assert journey["status"] == "followed_up" and journey["nudges_sent"] == 2
    assert [n["data"]["step"] for n in await inbox(members, identities, user)] == [
        "follow_up",
        "first",
    ]

    # Activity from before the nudge does not count; activity after it is the win-back.
    await was_active(nats_client, subject_prefix, cid, user, started - timedelta(days=1))
    await was_active(nats_client, subject_prefix, cid, user, utcnow() + timedelta(seconds=1))
    await eventually(journey_count(members, identities, cid, 1, status="won_back"))
    r = await members.client.get(
        f"/communities/{cid}/care-journeys/summary", headers=staff(identities)
    )
    assert r.status_code == 200
    assert r.json() | {"community_id": None} == {
        "community_id": None,
        "started": 1,
        "open": 0,
        "won_back": 1,
        "lapsed": 0,
        "win_back_rate": 1.0,
    }

    async def events() -> bool:
        nudges = await published(nats_client, subject_prefix, "hearth.members.care.nudge_sent.v1")
        back = await published(nats_client, subject_prefix, "hearth.members.member.won_back.v1")
        assert [e.data["step"] for e in nudges] == ["first", "follow_up"]
        assert len(back) == 1 and back[0].data["journey_id"] == journey["id"]
        assert back[0].data["nudges_sent"] == 2
        return True

    await eventually(events)

    # Quiet again later: a new journey; the window closes without activity → lapsed.
    await went_quiet(nats_client, subject_prefix, cid, user)
    await eventually(journey_count(members, identities, cid, 1, status="nudged"))
    lapsed = await tick(members.runtime, now=utcnow() + timedelta(days=11))
    assert lapsed.lapsed == 1 and lapsed.follow_ups == 0
    await eventually(journey_count(members, identities, cid, 1, status="lapsed"))


async def test_ticks_on_two_replicas_send_each_follow_up_once(
    members: RunningService, identities: Identities, nats_client: Any, subject_prefix: str
) -> None:
    # The service runs the scheduler loop itself (ServiceDefinition.background).
    running = [t.get_name() for t in members.runtime._background if not t.done()]
    assert "care_scheduler" in running
    cid = await make_community(members, identities)
    users = [uuid.uuid4() for _ in range(6)]
    for user in users:
        await join(members, identities, cid, user)
        await went_quiet(nats_client, subject_prefix, cid, user)
    await eventually(journey_count(members, identities, cid, 6))
    # A second replica's scheduler ticking at the same moment (on PostgreSQL each claims rows
    # with FOR UPDATE SKIP LOCKED on its own connection): every follow-up goes out exactly once.
    later = utcnow() + timedelta(days=4)
    replica = ServiceRuntime(definition, members.runtime.settings)  # own engine and pool
    try:
        results = await asyncio.gather(
            *(tick(rt, now=later, batch=4) for rt in (members.runtime, replica, replica))
        )
        results += [await tick(replica, now=later)]
    finally:
        await replica.db.dispose()
    assert sum(r.follow_ups for r in results) == 6
    async with members.runtime.db.session() as session:
        rows = (await session.exec(select(CareJourney))).all()
    assert sorted(j.nudges_sent for j in rows) == [2] * 6
    for user in users:
        assert len(await inbox(members, identities, user)) == 2


async def test_care_is_off_for_non_members_and_when_disabled_and_routes_refuse(
    members: RunningService, identities: Identities, nats_client: Any, subject_prefix: str
) -> None:
    cid = await make_community(members, identities)
    user, admin, stranger = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await join(members, identities, cid, user)
    await join(members, identities, cid, admin)
    r = await members.client.put(
        f"/communities/{cid}/members/{admin}/role",
        json={"role": "admin"},
        headers=staff(identities),
    )
    assert r.status_code == 200, r.text
    ah = identities.headers(admin)
    r = await members.client.get(f"/communities/{cid}/care-settings", headers=ah)
    assert r.status_code == 200 and r.json()["follow_up_after_hours"] == 72.0
    r = await members.client.put(
        f"/communities/{cid}/care-settings",
        json={"enabled": False, "follow_up_after_hours": 24, "win_back_days": 7},
        headers=ah,
    )
    assert r.status_code == 200 and r.json()["enabled"] is False
    off = await went_quiet(nats_client, subject_prefix, cid, user)  # care is off
    outside = await went_quiet(nats_client, subject_prefix, cid, stranger)  # not a member
    await eventually(handled(members, "members__care", off))
    await eventually(handled(members, "members__care", outside))
    assert await journeys(members, identities, cid) == []
    r = await members.client.put(
        f"/communities/{cid}/care-settings",
        json={"enabled": True, "follow_up_after_hours": 24, "win_back_days": 7},
        headers=ah,
    )
    marker = uuid.uuid4()
    await join(members, identities, cid, marker)
    await went_quiet(nats_client, subject_prefix, cid, marker)
    [only] = await eventually(journey_count(members, identities, cid, 1))
    assert only["user_id"] == str(marker)

    # Refusals: members may not read or change care settings, journeys or the summary.
    uh = identities.headers(user)
    for method, path in (
        ("GET", "/care-settings"),
        ("PUT", "/care-settings"),
        ("GET", "/care-journeys"),
        ("GET", "/care-journeys/summary"),
    ):
        body = {"enabled": True} if method == "PUT" else None
        r = await members.client.request(method, f"/communities/{cid}{path}", json=body, headers=uh)
        assert r.status_code == 403 and r.headers["content-type"] == PROBLEM, path
    r = await members.client.get(f"/communities/{cid}/care-journeys")
    assert r.status_code == 401
    # Bad input.
    for body in (
        {"follow_up_after_hours": 0},
        {"follow_up_after_hours": -1},
        {"win_back_days": 0},
        {"enabled": "perhaps"},
    ):
        r = await members.client.put(f"/communities/{cid}/care-settings", json=body, headers=ah)
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, body
    for query in ("status=bogus", "limit=0", "cursor=%%%"):
        r = await members.client.get(f"/communities/{cid}/care-journeys?{query}", headers=ah)
        assert r.status_code == 422, query
    r = await members.client.get(f"/communities/{uuid.uuid4()}/care-journeys", headers=ah)
    assert r.status_code == 404
