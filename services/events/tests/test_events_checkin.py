"""Check-in on the day: signed codes and QR images, hosts, walk-ins, no-shows (real NATS and DB)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from hearth_events.app import definition
from hearth_events.checkin.models import CheckIn
from hearth_members.incentives.consumers import MemberFact, points
from servicekit.ids import utcnow
from servicekit.testing.harness import Identities, RunningService, eventually

OPERATOR = uuid.UUID("00000000-0000-7000-8000-000000000001")
STAFF = ("operator",)


async def soon(
    events: RunningService,
    identities: Identities,
    community_id: uuid.UUID,
    *,
    minutes: float = 30,
    **extra: Any,
) -> dict[str, Any]:
    """An activity starting in `minutes` (inside the default check-in window when < 60)."""
    starts = utcnow() + timedelta(minutes=minutes)
    body = {
        "community_id": str(community_id),
        "title": "Meetup",
        "kind": "meetup",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=2)).isoformat(),
        "capacity": 10,
        **extra,
    }
    r = await events.client.post(
        "/activities", json=body, headers=identities.headers(OPERATOR, *STAFF)
    )
    assert r.status_code == 201, r.text
    return r.json()


async def register(
    events: RunningService, identities: Identities, activity: dict, user: uuid.UUID
) -> dict:
    """Register `user` and return the registration."""
    r = await events.client.post(
        f"/activities/{activity['id']}/registrations", headers=identities.headers(user)
    )
    assert r.status_code == 201, r.text
    return r.json()


async def code_of(
    events: RunningService, identities: Identities, activity: dict, user: uuid.UUID
) -> str:
    """The user's check-in code."""
    r = await events.client.get(
        f"/activities/{activity['id']}/registrations/me/check-in-code",
        headers=identities.headers(user),
    )
    assert r.status_code == 200, r.text
    return str(r.json()["code"])


async def test_check_in_by_code_and_by_hand_then_no_shows_when_it_ends(
    events: RunningService, identities: Identities, directory, published
) -> None:
    community_id, [a, b, c, d] = await directory.community(events, members=4)
    owner = next(
        u
        for (cid, u) in directory.snapshots.membership_ids
        if cid == community_id and u not in (a, b, c, d)
    )
    host = identities.headers(owner)
    activity = await soon(events, identities, community_id, capacity=3)
    other = await soon(events, identities, community_id, capacity=3)
    regs = {u: await register(events, identities, activity, u) for u in (a, b, c, d)}
    assert [regs[u]["status"] for u in (a, b, c, d)] == ["confirmed"] * 3 + ["waitlisted"]
    await register(events, identities, other, a)
    checkins = f"/activities/{activity['id']}/check-ins"

    # The registrant's code and its QR images (PNG and SVG), never cached by a shared cache.
    base = f"/activities/{activity['id']}/registrations/me/check-in-code"
    r = await events.client.get(base, headers=identities.headers(a))
    assert r.status_code == 200 and r.json()["registration_id"] == regs[a]["id"], r.text
    code_a = r.json()["code"]
    assert await code_of(events, identities, activity, a) == code_a  # stable
    r = await events.client.get(r.json()["png_url"], headers=identities.headers(a))
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content.startswith(b"\x89PNG\r\n\x1a\n") and "no-store" in r.headers["cache-control"]
    r = await events.client.get(f"{base}/qr.svg", headers=identities.headers(a))
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in r.content
    r = await events.client.get(base, headers=identities.headers(d))  # waitlisted: no seat
    assert r.status_code == 409 and r.json()["type"].endswith(":no-confirmed-seat")

    # A code for another activity, for another person, or tampered with is refused.
    code_a_other = await code_of(events, identities, other, a)
    assert code_a_other != code_a
    for body in (
        {"code": code_a_other},
        {"code": code_a, "user_id": str(b)},
        {"code": ".".join([code_a.split(".")[0], code_of_user_part(b), code_a.split(".")[2]])},
        {"code": code_a[:-2] + ("AA" if not code_a.endswith("AA") else "BB")},
        {"code": "not-a-code"},
    ):
        r = await events.client.post(checkins, json=body, headers=host)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["type"].endswith(":invalid-check-in-code"), r.text
    r = await events.client.post(
        f"/activities/{other['id']}/check-ins", json={"code": code_a}, headers=host
    )
    assert r.status_code == 422 and r.json()["type"].endswith(":invalid-check-in-code")

    # Only organisers check people in.
    r = await events.client.post(checkins, json={"code": code_a}, headers=identities.headers(b))
    assert r.status_code == 403, r.text

    # By code, then again: the same check-in, counted once.
    r = await events.client.post(checkins, json={"code": code_a, "user_id": str(a)}, headers=host)
    assert r.status_code == 201 and r.json()["method"] == "code", r.text
    first = r.json()
    r = await events.client.post(checkins, json={"code": code_a}, headers=host)
    assert r.status_code == 200 and r.json()["id"] == first["id"]
    r = await events.client.post(checkins, json={"user_id": str(a)}, headers=host)
    assert r.status_code == 200 and r.json()["id"] == first["id"]
    # By hand; a waitlisted person is not seated without a walk-in, and walk-ins are off.
    r = await events.client.post(checkins, json={"user_id": str(b)}, headers=host)
    assert r.status_code == 201 and r.json()["method"] == "manual", r.text
    r = await events.client.post(checkins, json={"user_id": str(d)}, headers=host)
    assert r.status_code == 409 and r.json()["type"].endswith(":no-confirmed-seat")
    r = await events.client.post(checkins, json={"user_id": str(d), "walk_in": True}, headers=host)
    assert r.status_code == 409 and r.json()["type"].endswith(":walk-ins-not-allowed")
    r = await events.client.get(checkins, headers=host)
    assert [x["user_id"] for x in r.json()["items"]] == [str(a), str(b)]

    found = await published("events.attendance.checked_in.v1", 2)
    assert {e.data["user_id"] for e in found} == {str(a), str(b)}

    # The activity ends: the confirmed seat not checked in (c) is a no-show, the waitlisted
    # (d) is not; check-in is closed from then on.
    for to in ("ongoing", "ended"):
        r = await events.client.post(
            f"/activities/{activity['id']}/transitions", json={"to": to}, headers=host
        )
        assert r.status_code == 200, r.text
    no_shows = await published("events.attendance.no_show.v1", 1)
    assert [(e.data["user_id"], e.data["registration_id"]) for e in no_shows] == [
        (str(c), regs[c]["id"])
    ]
    r = await events.client.post(checkins, json={"user_id": str(c)}, headers=host)
    assert r.status_code == 409 and r.json()["type"].endswith(":check-in-closed")
    r = await events.client.post(
        f"/activities/{activity['id']}/transitions", json={"to": "summarized"}, headers=host
    )
    assert r.status_code == 200
    await asyncio.sleep(0.5)
    assert len(await published("events.attendance.no_show.v1", 1)) == 1  # once, ever

    # Members' points consumer reads both facts with its own models: they must parse and name
    # the community and the member (the contract of hearth_members.incentives.consumers).
    for envelope in [*found, *no_shows]:
        assert envelope.type in points.handlers, envelope.type
        fact = envelope.payload(MemberFact)
        assert fact.community_id == community_id
        assert str(fact.user_id) == envelope.data["user_id"]


def code_of_user_part(user: uuid.UUID) -> str:
    """The member part of a code for `user` (base64url of the UUID's bytes)."""
    import base64

    return base64.urlsafe_b64encode(user.bytes).decode().rstrip("=")


async def test_check_in_window_and_policy(
    events: RunningService, identities: Identities, directory
) -> None:
    community_id, [a] = await directory.community(events, members=1)
    tomorrow = await soon(events, identities, community_id, minutes=24 * 60)
    await register(events, identities, tomorrow, a)
    staff = identities.headers(OPERATOR, *STAFF)
    url = f"/activities/{tomorrow['id']}/check-ins"
    r = await events.client.post(url, json={"user_id": str(a)}, headers=staff)
    assert r.status_code == 409 and r.json()["type"].endswith(":outside-check-in-window"), r.text
    assert r.json()["opens_at"] and r.json()["closes_at"]
    policy = f"/activities/{tomorrow['id']}/check-in-policy"
    r = await events.client.get(policy, headers=identities.headers(a))
    assert r.status_code == 200 and r.json()["opens_minutes_before"] == 60, r.text
    r = await events.client.put(
        policy, json={"opens_minutes_before": 25 * 60}, headers=identities.headers(a)
    )
    assert r.status_code == 403
    r = await events.client.put(policy, json={"opens_minutes_before": 25 * 60}, headers=staff)
    assert r.status_code == 200 and r.json()["walk_ins"] is False, r.text
    r = await events.client.post(url, json={"user_id": str(a)}, headers=staff)
    assert r.status_code == 201, r.text


async def test_checking_in_twice_at_once_counts_once(
    any_database_url: str, launch, identities: Identities, directory, published
) -> None:
    events = await launch(definition, database_url=any_database_url)
    community_id, [a] = await directory.community(events, members=1)
    activity = await soon(events, identities, community_id)
    await register(events, identities, activity, a)
    code = await code_of(events, identities, activity, a)
    staff = identities.headers(OPERATOR, *STAFF)
    url = f"/activities/{activity['id']}/check-ins"
    bodies = [{"code": code}] * 4 + [{"user_id": str(a)}] * 4
    responses = await asyncio.gather(
        *(events.client.post(url, json=b, headers=staff) for b in bodies)
    )
    assert sorted(r.status_code for r in responses) == [200] * 7 + [201], [
        r.text for r in responses
    ]
    assert len({r.json()["id"] for r in responses}) == 1
    async with events.runtime.db.session() as session:
        count = (await session.exec(select(func.count()).where(col(CheckIn.user_id) == a))).one()
    assert count == 1
    await published("events.attendance.checked_in.v1", 1)
    await asyncio.sleep(0.5)
    assert len(await published("events.attendance.checked_in.v1", 1)) == 1


async def test_two_walk_ins_for_the_last_seat(
    any_database_url: str, launch, identities: Identities, directory
) -> None:
    events = await launch(definition, database_url=any_database_url)
    community_id, [a, w1, w2] = await directory.community(events, members=3)
    activity = await soon(events, identities, community_id, capacity=2)
    await register(events, identities, activity, a)
    staff = identities.headers(OPERATOR, *STAFF)
    r = await events.client.put(
        f"/activities/{activity['id']}/check-in-policy", json={"walk_ins": True}, headers=staff
    )
    assert r.status_code == 200 and r.json()["walk_ins"] is True
    url = f"/activities/{activity['id']}/check-ins"
    responses = await asyncio.gather(
        *(
            events.client.post(url, json={"user_id": str(w), "walk_in": True}, headers=staff)
            for w in (w1, w2)
        )
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [201, 409], [r.text for r in responses]
    refused = next(r for r in responses if r.status_code == 409)
    assert refused.json()["type"].endswith(":activity-full")
    seated = next(r for r in responses if r.status_code == 201).json()
    assert seated["method"] == "walk_in"
    r = await events.client.get(f"/activities/{activity['id']}", headers=staff)
    assert r.json()["seats_taken"] == 2
    r = await events.client.get(f"/activities/{activity['id']}/registrations", headers=staff)
    statuses = {x["user_id"]: x["status"] for x in r.json()["items"]}
    assert statuses == {str(a): "confirmed", seated["user_id"]: "confirmed"}

    async def settled() -> bool:
        pending, _ = await events.runtime.relay.backlog()
        return pending == 0

    await eventually(settled)


def test_codes_verify_under_any_key_of_the_ring_and_bind_the_activity() -> None:
    """A key rollover keeps old codes valid; a code never verifies for another activity."""
    from hearth_events.checkin import codes

    activity, registration, user = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    old = codes.CodeKeys(keys=[b"old-key"])
    rolled = codes.CodeKeys(keys=[b"new-key", b"old-key"])
    code = codes.issue(old, activity_id=activity, registration_id=registration, user_id=user)
    assert codes.read(rolled, code, activity_id=activity) == (registration, user)
    assert codes.read(rolled, code, activity_id=uuid.uuid4()) is None
    assert codes.read(codes.CodeKeys(keys=[b"new-key"]), code, activity_id=activity) is None
    assert (
        codes.issue(rolled, activity_id=activity, registration_id=registration, user_id=user)
        != code
    )
