"""Activity lifecycle, waitlist and promotion through the events API (real NATS and databases)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from hearth_events.app import definition
from hearth_events.models import CommunityMembership
from servicekit.ids import utcnow
from servicekit.testing.harness import Identities, RunningService, eventually

PROBLEM = "application/problem+json"
OPERATOR = uuid.UUID("00000000-0000-7000-8000-000000000001")
STAFF = ("operator",)


def activity_body(community_id: uuid.UUID, **extra: Any) -> dict[str, Any]:
    """A valid POST /activities body starting tomorrow."""
    starts = utcnow() + timedelta(days=1)
    return {
        "community_id": str(community_id),
        "title": "Community meetup",
        "kind": "offline_meetup",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=2)).isoformat(),
        "capacity": 10,
        **extra,
    }


async def publish(
    events: RunningService, identities: Identities, community_id: uuid.UUID, **extra: Any
) -> dict[str, Any]:
    """Create an activity as an operator."""
    r = await events.client.post(
        "/activities",
        json=activity_body(community_id, **extra),
        headers=identities.headers(OPERATOR, *STAFF),
    )
    assert r.status_code == 201, r.text
    return r.json()


async def move(
    events: RunningService, headers: dict[str, str], activity: dict[str, Any], to: str
) -> Any:
    """POST a transition and return the response."""
    return await events.client.post(
        f"/activities/{activity['id']}/transitions", json={"to": to}, headers=headers
    )


async def test_the_lifecycle_is_an_explicit_state_machine(
    events: RunningService, identities: Identities, directory, published
) -> None:
    community_id, [member] = await directory.community(events, members=1)
    staff = identities.headers(OPERATOR, *STAFF)
    draft = await publish(events, identities, community_id, draft=True, kind="other")
    assert draft["state"] == "draft"
    url = f"/activities/{draft['id']}/registrations"
    r = await events.client.post(url, headers=identities.headers(member))
    assert r.status_code == 409 and r.json()["type"] == "urn:hearth:problem:registration-closed"

    # A move the machine forbids is a 409 naming the moves it allows.
    r = await move(events, staff, draft, "ended")
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
    assert r.json()["type"] == "urn:hearth:problem:invalid-transition"
    assert r.json()["state"] == "draft" and r.json()["allowed"] == ["cancelled", "published"]

    for to in ("published", "registration_closed", "published"):
        r = await move(events, staff, draft, to)
        assert r.status_code == 200 and r.json()["state"] == to, r.text
    r = await events.client.post(url, headers=identities.headers(member))
    assert r.status_code == 201 and r.json()["status"] == "confirmed"
    for to in ("ongoing", "ended", "summarized"):
        r = await move(events, staff, draft, to)
        assert r.status_code == 200 and r.json()["state"] == to, r.text
    r = await move(events, staff, draft, "cancelled")
    assert r.status_code == 409 and r.json()["allowed"] == []

    # Publishing the draft announced it once; every move announced itself.
    [announced] = await published("events.activity.published.v1", 1)
    assert announced.data["activity_id"] == draft["id"]
    moves = await published("events.activity.state_changed.v1", 6)
    assert [(e.data["from_state"], e.data["to_state"]) for e in moves] == [
        ("draft", "published"),
        ("published", "registration_closed"),
        ("registration_closed", "published"),
        ("published", "ongoing"),
        ("ongoing", "ended"),
        ("ended", "summarized"),
    ]

    # Cancelled is reachable from any state before ended, and is final.
    other = await publish(events, identities, community_id)
    r = await move(events, staff, other, "ongoing")
    assert r.status_code == 200
    r = await move(events, staff, other, "cancelled")
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    r = await move(events, staff, other, "published")
    assert r.status_code == 409 and r.json()["allowed"] == []
    r = await move(events, staff, other, "no-such-state")
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM


async def test_a_freed_seat_goes_to_the_waitlists_head(
    events: RunningService, identities: Identities, directory, published
) -> None:
    community_id, users = await directory.community(events, members=4)
    a, b, c, d = users
    activity = await publish(events, identities, community_id, capacity=1)
    url = f"/activities/{activity['id']}/registrations"
    for user, status in ((a, "confirmed"), (b, "waitlisted"), (c, "waitlisted")):
        r = await events.client.post(url, headers=identities.headers(user))
        assert r.status_code == 201 and r.json()["status"] == status, r.text

    # A cancels: B, first in line, takes the seat; C keeps waiting.
    r = await events.client.delete(f"{url}/me", headers=identities.headers(a))
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    again = await events.client.delete(f"{url}/me", headers=identities.headers(a))
    assert again.status_code == 200 and again.json()["status"] == "cancelled"
    [promoted] = await published("events.registration.promoted.v1", 1)
    assert promoted.data["user_id"] == str(b)

    # A comes back at the end of the line, with the same registration.
    back = await events.client.post(url, headers=identities.headers(a))
    assert back.status_code == 201 and back.json()["status"] == "waitlisted"
    assert back.json()["id"] == r.json()["id"]
    r = await events.client.post(url, headers=identities.headers(d))
    assert r.json()["status"] == "waitlisted"

    # Raising capacity promotes in first-come order: C, then A (D still waits).
    staff = identities.headers(OPERATOR, *STAFF)
    r = await events.client.put(
        f"/activities/{activity['id']}/capacity", json={"capacity": 3}, headers=staff
    )
    assert r.status_code == 200 and r.json()["seats_taken"] == 3, r.text
    promoted = await published("events.registration.promoted.v1", 3)
    assert [e.data["user_id"] for e in promoted] == [str(b), str(c), str(a)]
    r = await events.client.get(url, headers=staff)
    listed = [(x["user_id"], x["status"]) for x in r.json()["items"]]
    assert listed == [
        (str(b), "confirmed"),
        (str(c), "confirmed"),
        (str(a), "confirmed"),
        (str(d), "waitlisted"),
    ]
    # Capacity never drops below the seats taken.
    r = await events.client.put(
        f"/activities/{activity['id']}/capacity", json={"capacity": 2}, headers=staff
    )
    assert (
        r.status_code == 409 and r.json()["type"] == "urn:hearth:problem:capacity-below-seats-taken"
    )

    # A waitlisted member giving up frees no seat and promotes nobody.
    r = await events.client.delete(f"{url}/me", headers=identities.headers(d))
    assert r.status_code == 200
    cancelled = await published("events.registration.cancelled.v1", 2)
    assert [e.data["was"] for e in cancelled] == ["confirmed", "waitlisted"]

    # Once the activity is under way, registrations can no longer be given up.
    await move(events, staff, activity, "ongoing")
    r = await events.client.delete(f"{url}/me", headers=identities.headers(b))
    assert r.status_code == 409
    assert r.json()["type"] == "urn:hearth:problem:registration-not-cancellable"


async def wait_memberships(service: RunningService, community_id: uuid.UUID, count: int) -> None:
    """Wait until the events read model holds `count` memberships of a community."""

    async def arrived() -> bool:
        async with service.runtime.db.session() as session:
            stmt = select(func.count()).where(col(CommunityMembership.community_id) == community_id)
            return (await session.exec(stmt)).one() >= count

    await eventually(arrived)


async def test_community_owners_manage_and_members_are_refused(
    events: RunningService, identities: Identities, directory
) -> None:
    community_id, owner = uuid.uuid4(), uuid.uuid4()
    member, admin = uuid.uuid4(), uuid.uuid4()
    await directory.joined(community_id, owner, role="owner")
    await directory.joined(community_id, admin, role="admin")
    await directory.joined(community_id, member)
    await wait_memberships(events, community_id, 3)
    r = await events.client.post(
        "/activities", json=activity_body(community_id), headers=identities.headers(owner)
    )
    assert r.status_code == 201, r.text
    activity = r.json()
    r = await move(events, identities.headers(admin), activity, "registration_closed")
    assert r.status_code == 200

    member_headers = identities.headers(member)
    outsider = identities.headers(uuid.uuid4())
    aid = activity["id"]
    refused = [
        ("POST", f"/activities/{aid}/transitions", {"to": "published"}),
        ("PUT", f"/activities/{aid}/capacity", {"capacity": 50}),
    ]
    for headers in (member_headers, outsider):
        for method, url, body in refused:
            r = await events.client.request(method, url, json=body, headers=headers)
            assert r.status_code == 403 and r.headers["content-type"] == PROBLEM, (method, url)
    # Nobody unauthenticated reaches any new route.
    for method, url, body in [*refused, ("DELETE", f"/activities/{aid}/registrations/me", None)]:
        r = await events.client.request(method, url, json=body)
        assert r.status_code == 401 and r.headers["content-type"] == PROBLEM, (method, url)
    # Someone who never registered has nothing to cancel.
    r = await events.client.delete(f"/activities/{aid}/registrations/me", headers=outsider)
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    # An owner's community is not every community: another community's activity is refused.
    elsewhere, _ = await directory.community(events)
    r = await events.client.post(
        "/activities", json=activity_body(elsewhere), headers=identities.headers(owner)
    )
    assert r.status_code == 403


async def test_a_thousand_members_race_for_a_hundred_seats(
    any_database_url: str, launch, identities: Identities, directory
) -> None:
    events = await launch(definition, database_url=any_database_url)
    community_id, _ = await directory.community(events)
    users = [uuid.uuid4() for _ in range(1000)]
    # Seed the read model directly: the race, not the snapshot feed, is under test here.
    async with events.runtime.db.session() as session:
        for user in users:
            session.add(
                CommunityMembership(
                    community_id=community_id,
                    user_id=user,
                    membership_id=uuid.uuid4(),
                    role="member",
                    status="active",
                    joined_at=utcnow(),
                    version=1,
                )
            )
        await session.commit()
    activity = await publish(events, identities, community_id, capacity=100)
    url = f"/activities/{activity['id']}/registrations"
    responses = await asyncio.gather(
        *(events.client.post(url, headers=identities.headers(u)) for u in users)
    )
    bad = [(r.status_code, r.text) for r in responses if r.status_code != 201]
    assert not bad, bad[:3]
    statuses = [r.json()["status"] for r in responses]
    assert statuses.count("confirmed") == 100 and statuses.count("waitlisted") == 900

    staff = identities.headers(OPERATOR, *STAFF)
    listed: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = (await events.client.get(url, params=params, headers=staff)).json()
        listed += page["items"]
        if not (cursor := page["next_cursor"]):
            break
    # In order: the first 100 to commit hold the seats, the rest wait in the order they came.
    assert [x["position"] for x in listed] == list(range(1, 1001))
    assert [x["status"] for x in listed] == ["confirmed"] * 100 + ["waitlisted"] * 900
    stamps = [x["registered_at"] for x in listed]
    assert stamps == sorted(stamps)
    r = await events.client.get(f"/activities/{activity['id']}", headers=staff)
    assert r.json()["seats_taken"] == 100
