"""Activities and registrations through the events API, with real NATS and databases."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from hearth_events.app import definition
from hearth_members.app import definition as members_definition
from servicekit.ids import utcnow
from servicekit.pagination import encode_cursor
from servicekit.testing.harness import (
    Identities,
    RunningService,
    eventually,
)

PROBLEM = "application/problem+json"
OPERATOR = uuid.UUID("00000000-0000-7000-8000-000000000001")


def activity_body(community_id: uuid.UUID, **extra: Any) -> dict[str, Any]:
    """A valid POST /activities body starting tomorrow."""
    starts = utcnow() + timedelta(days=1)
    return {
        "community_id": str(community_id),
        "title": "Intro to the platform",
        "kind": "online_lecture",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=2)).isoformat(),
        "capacity": 10,
        **extra,
    }


async def publish(
    events: RunningService, identities: Identities, community_id: uuid.UUID, **extra: Any
) -> dict[str, Any]:
    """Publish an activity as an operator."""
    r = await events.client.post(
        "/activities",
        json=activity_body(community_id, **extra),
        headers=identities.headers(OPERATOR, "operator"),
    )
    assert r.status_code == 201, r.text
    return r.json()


async def test_publish_get_and_list_activities(
    events: RunningService, identities: Identities, directory, published
) -> None:
    community_id, [member] = await directory.community(events, members=1)
    soon = utcnow() + timedelta(hours=3)
    created = [
        await publish(
            events,
            identities,
            community_id,
            title=f"Session {i}",
            starts_at=(soon + timedelta(days=3 - i)).isoformat(),
            ends_at=(soon + timedelta(days=3 - i, hours=1)).isoformat(),
            location="Room 3" if i == 0 else None,
            online_url="https://meet.example.com/x" if i == 1 else None,
        )
        for i in range(3)
    ]
    first = created[0]
    assert first["seats_taken"] == 0 and first["capacity"] == 10 and first["location"] == "Room 3"
    assert first["starts_at"].endswith(("Z", "+00:00"))

    # Members of the community see activities, soonest first, page by page.
    headers = identities.headers(member)
    r = await events.client.get(f"/activities/{first['id']}", headers=headers)
    assert r.status_code == 200 and r.json()["title"] == "Session 0"
    r = await events.client.get(
        "/activities", params={"community_id": str(community_id), "limit": 2}, headers=headers
    )
    assert r.status_code == 200, r.text
    page1 = r.json()
    assert [a["title"] for a in page1["items"]] == ["Session 2", "Session 1"]
    r = await events.client.get(
        "/activities",
        params={"community_id": str(community_id), "limit": 2, "cursor": page1["next_cursor"]},
        headers=headers,
    )
    assert [a["title"] for a in r.json()["items"]] == ["Session 0"]
    assert r.json()["next_cursor"] is None

    envelopes = await published("events.activity.published.v1", 3)
    env = next(e for e in envelopes if e.data["activity_id"] == first["id"])
    assert env.type == "hearth.events.activity.published.v1" and env.source == "/hearth/events"
    assert env.subject == first["id"]
    assert env.data["community_id"] == str(community_id)
    assert env.data["kind"] == "online_lecture" and env.data["capacity"] == 10
    assert env.data["published_by"] == str(OPERATOR)
    assert {
        "title",
        "starts_at",
        "ends_at",
        "location",
        "online_url",
        "published_at",
    } <= env.data.keys()


async def test_registration_capacity_idempotency_and_events(
    events: RunningService, identities: Identities, directory, published
) -> None:
    community_id, users = await directory.community(events, members=3)
    activity = await publish(events, identities, community_id, capacity=2)
    url = f"/activities/{activity['id']}/registrations"

    r1 = await events.client.post(url, headers=identities.headers(users[0]))
    assert r1.status_code == 201, r1.text
    assert r1.json()["status"] == "confirmed" and r1.json()["user_id"] == str(users[0])
    again = await events.client.post(url, headers=identities.headers(users[0]))
    assert again.status_code == 200 and again.json()["id"] == r1.json()["id"]
    r2 = await events.client.post(url, headers=identities.headers(users[1]))
    assert r2.status_code == 201
    # Once full, the next member joins the waitlist instead of being refused.
    full = await events.client.post(url, headers=identities.headers(users[2]))
    assert full.status_code == 201, full.text
    assert full.json()["status"] == "waitlisted" and full.json()["position"] == 3
    # A registered member asking again when the activity is full still gets their seat back.
    again = await events.client.post(url, headers=identities.headers(users[1]))
    assert again.status_code == 200 and again.json()["id"] == r2.json()["id"]

    staff = identities.headers(OPERATOR, "operator")
    r = await events.client.get(f"/activities/{activity['id']}", headers=staff)
    assert r.json()["seats_taken"] == 2
    r = await events.client.get(url, params={"limit": 2}, headers=staff)
    assert r.status_code == 200 and len(r.json()["items"]) == 2
    r2p = await events.client.get(url, params={"cursor": r.json()["next_cursor"]}, headers=staff)
    listed = r.json()["items"] + r2p.json()["items"]
    assert [x["user_id"] for x in listed] == [str(u) for u in users]

    envelopes = await published("events.registration.confirmed.v1", 2)
    await eventually(_relay_idle(events))
    envelopes = await published("events.registration.confirmed.v1", 2)
    assert len(envelopes) == 2
    env = next(e for e in envelopes if e.data["user_id"] == str(users[0]))
    assert env.data == {
        "registration_id": r1.json()["id"],
        "activity_id": activity["id"],
        "community_id": str(community_id),
        "user_id": str(users[0]),
        "registered_at": env.data["registered_at"],
    }
    assert env.subject == activity["id"]


def _relay_idle(service: RunningService) -> Any:
    async def idle() -> bool:
        pending, _ = await service.runtime.relay.backlog()
        return pending == 0

    return idle


async def test_last_seat_race_on_each_backend(
    any_database_url: str, launch, identities: Identities, directory
) -> None:
    events = await launch(definition, database_url=any_database_url)
    community_id, users = await directory.community(events, members=10)
    last_seat = await publish(events, identities, community_id, capacity=1)
    url = f"/activities/{last_seat['id']}/registrations"
    responses = await asyncio.gather(
        *(events.client.post(url, headers=identities.headers(u)) for u in users)
    )
    assert [r.status_code for r in responses] == [201] * 10
    statuses = sorted(r.json()["status"] for r in responses)
    assert statuses == ["confirmed"] + ["waitlisted"] * 9, statuses
    staff = identities.headers(OPERATOR, "operator")
    r = await events.client.get(url, headers=staff)
    assert [x["status"] for x in r.json()["items"]] == ["confirmed"] + ["waitlisted"] * 9
    r = await events.client.get(f"/activities/{last_seat['id']}", headers=staff)
    assert r.json()["seats_taken"] == 1

    # One person racing themselves gets one registration and one seat.
    roomy = await publish(events, identities, community_id, capacity=5)
    url = f"/activities/{roomy['id']}/registrations"
    headers = identities.headers(users[0])
    responses = await asyncio.gather(*(events.client.post(url, headers=headers) for _ in range(8)))
    assert sorted(r.status_code for r in responses) == [200] * 7 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    r = await events.client.get(f"/activities/{roomy['id']}", headers=staff)
    assert r.json()["seats_taken"] == 1

    # The same person racing for the last seat still ends with exactly one registration.
    one_left = await publish(events, identities, community_id, capacity=1)
    url = f"/activities/{one_left['id']}/registrations"
    headers = identities.headers(users[1])
    responses = await asyncio.gather(*(events.client.post(url, headers=headers) for _ in range(6)))
    assert sorted(r.status_code for r in responses) == [200] * 5 + [201]


async def test_registration_closes_when_the_activity_starts(
    events: RunningService, identities: Identities, directory
) -> None:
    community_id, [member] = await directory.community(events, members=1)
    started = utcnow() - timedelta(minutes=5)
    activity = await publish(
        events,
        identities,
        community_id,
        starts_at=started.isoformat(),
        ends_at=(started + timedelta(hours=1)).isoformat(),
    )
    r = await events.client.post(
        f"/activities/{activity['id']}/registrations", headers=identities.headers(member)
    )
    assert r.status_code == 409 and r.json()["type"] == "urn:hearth:problem:registration-closed"


async def test_invalid_bodies_and_unknown_things(
    events: RunningService, identities: Identities, directory
) -> None:
    community_id, [member] = await directory.community(events, members=1)
    staff = identities.headers(OPERATOR, "operator")
    starts = utcnow() + timedelta(days=1)

    async def refused(body: dict[str, Any], *fields: str) -> None:
        r = await events.client.post("/activities", json=body, headers=staff)
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, r.text
        if fields:
            assert {e["loc"][-1] for e in r.json()["errors"]} >= set(fields), r.json()

    await refused(activity_body(community_id, ends_at=starts.isoformat()))  # ends == starts
    await refused(activity_body(community_id, ends_at=(starts - timedelta(hours=1)).isoformat()))
    await refused(activity_body(community_id, capacity=0), "capacity")
    await refused(activity_body(community_id, kind="party", title="  "), "kind", "title")
    await refused(activity_body(community_id, starts_at="2030-01-01T10:00:00"), "starts_at")
    await refused(activity_body(community_id, online_url="ftp://example.com/x"), "online_url")
    await refused({**activity_body(community_id), "community_id": "nope"}, "community_id")
    await refused({"title": "only a title"}, "community_id", "kind", "starts_at", "capacity")
    r = await events.client.post("/activities", content=b"{not json", headers=staff)
    assert r.status_code == 422

    r = await events.client.post("/activities", json=activity_body(uuid.uuid4()), headers=staff)
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM

    unknown = uuid.uuid4()
    for method, url in (
        ("GET", f"/activities/{unknown}"),
        ("POST", f"/activities/{unknown}/registrations"),
        ("GET", f"/activities/{unknown}/registrations"),
    ):
        r = await events.client.request(method, url, headers=staff)
        assert r.status_code == 404 and r.headers["content-type"] == PROBLEM, (method, url)
    r = await events.client.get("/activities/not-a-uuid", headers=staff)
    assert r.status_code == 422
    r = await events.client.get("/activities", headers=staff)  # community_id is required
    assert r.status_code == 422
    r = await events.client.get(
        "/activities",
        params={"community_id": str(community_id), "cursor": "garbage!"},
        headers=identities.headers(member),
    )
    assert r.status_code == 422


async def test_times_beyond_the_calendar_in_utc_are_a_422_not_a_500(
    events: RunningService, identities: Identities, directory
) -> None:
    community_id, _ = await directory.community(events)
    staff = identities.headers(OPERATOR, "operator")
    # Valid RFC 3339, but 23:59 behind UTC it is already year 10000 there.
    for starts_at, ends_at in (
        ("9999-12-31T23:00:00-23:59", "9999-12-31T23:30:00-23:59"),
        ("0001-01-01T00:00:00+23:59", "2030-01-01T00:00:00+00:00"),
    ):
        body = activity_body(community_id, starts_at=starts_at, ends_at=ends_at)
        r = await events.client.post("/activities", json=body, headers=staff)
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, r.text
        assert r.json()["type"] == "urn:hearth:problem:validation-error"
        assert "starts_at" in {e["loc"][-1] for e in r.json()["errors"]}, r.json()


async def test_well_formed_cursors_with_the_wrong_values_are_a_422(
    events: RunningService, identities: Identities, directory
) -> None:
    community_id, [member] = await directory.community(events, members=1)
    activity = await publish(events, identities, community_id)
    at, ident = activity["starts_at"], activity["id"]
    lists = (
        (
            "/activities",  # its cursor is [starts_at, id]
            {"community_id": str(community_id)},
            identities.headers(member),
            [
                [at, 5],  # a number where the id was (an AttributeError, a 500, before)
                [at, {"id": ident}],
                [5, ident],
                [ident],
                [None, None],
                ["9999-12-31T23:00:00-23:59", ident],  # out of range once in UTC
            ],
        ),
        (
            f"/activities/{ident}/registrations",  # its cursor is [position, id]
            {},
            identities.headers(OPERATOR, "operator"),
            [
                [5],
                [{"id": ident}, ident],
                [None, None],
                [1, "not-a-uuid"],
                [ident, ident],
                [True, ident],
                [2**40, ident],  # beyond the integer column: a 422, not a database error
                [-1, ident],
            ],
        ),
    )
    for url, params, headers, forged in lists:
        for values in forged:
            cursor = encode_cursor(values)
            r = await events.client.get(url, params={**params, "cursor": cursor}, headers=headers)
            assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, (url, values)
            assert r.json()["type"] == "urn:hearth:problem:invalid-cursor", r.text
        # The list itself still answers.
        r = await events.client.get(url, params={**params, "limit": 1}, headers=headers)
        assert r.status_code == 200, r.text


async def test_refusals(events: RunningService, identities: Identities, directory) -> None:
    community_id, [member] = await directory.community(events, members=1)
    activity = await publish(events, identities, community_id)
    routes = [
        ("POST", "/activities", activity_body(community_id)),
        ("GET", f"/activities?community_id={community_id}", None),
        ("GET", f"/activities/{activity['id']}", None),
        ("POST", f"/activities/{activity['id']}/registrations", None),
        ("GET", f"/activities/{activity['id']}/registrations", None),
    ]
    for method, url, body in routes:
        r = await events.client.request(method, url, json=body)
        assert r.status_code == 401 and r.headers["content-type"] == PROBLEM, (method, url)
        r = await events.client.request(method, url, json=body, headers={"x-hearth-identity": "x"})
        assert r.status_code == 401, (method, url)

    # A plain member may not publish activities or see who registered.
    member_headers = identities.headers(member)
    r = await events.client.post(
        "/activities", json=activity_body(community_id), headers=member_headers
    )
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    r = await events.client.get(
        f"/activities/{activity['id']}/registrations", headers=member_headers
    )
    assert r.status_code == 403

    # Someone outside the community may neither see nor register.
    outsider = identities.headers(uuid.uuid4())
    for method, url, _ in routes[1:4]:
        r = await events.client.request(method, url, headers=outsider)
        assert r.status_code == 403 and r.headers["content-type"] == PROBLEM, (method, url)
    # Staff who are not members of the community may not register either.
    r = await events.client.post(
        f"/activities/{activity['id']}/registrations",
        headers=identities.headers(OPERATOR, "operator"),
    )
    assert r.status_code == 403


async def test_memberships_come_from_the_real_members_service(
    launch, identities: Identities, events: RunningService
) -> None:
    members = await launch(members_definition)
    staff = identities.headers(OPERATOR, "operator")
    r = await members.client.post(
        "/communities", json={"name": "Makers", "kind": "customer"}, headers=staff
    )
    assert r.status_code == 201, r.text
    community_id = r.json()["id"]
    joiner = uuid.uuid4()
    r = await members.client.post(
        f"/communities/{community_id}/members", headers=identities.headers(joiner)
    )
    assert r.status_code == 201

    async def published_ok() -> Any:
        r = await events.client.post(
            "/activities", json=activity_body(uuid.UUID(community_id)), headers=staff
        )
        return r.json() if r.status_code == 201 else None

    activity = await eventually(published_ok)  # once the owner's member.joined arrived

    async def registered() -> bool:
        r = await events.client.post(
            f"/activities/{activity['id']}/registrations", headers=identities.headers(joiner)
        )
        return r.status_code == 201

    await eventually(registered)
    r = await events.client.post(
        f"/activities/{activity['id']}/registrations", headers=identities.headers(uuid.uuid4())
    )
    assert r.status_code == 403


async def test_a_retried_publish_with_an_idempotency_key_makes_one_activity(
    events: RunningService, identities: Identities, directory
) -> None:
    community_id, _ = await directory.community(events)
    headers = {**identities.headers(OPERATOR, "operator"), "Idempotency-Key": "publish-1"}
    body = activity_body(community_id)
    first = await events.client.post("/activities", json=body, headers=headers)
    retry = await events.client.post("/activities", json=body, headers=headers)
    assert first.status_code == retry.status_code == 201
    assert retry.json()["id"] == first.json()["id"]
    r = await events.client.get(
        "/activities", params={"community_id": str(community_id)}, headers=headers
    )
    assert [a["id"] for a in r.json()["items"]] == [first.json()["id"]]
