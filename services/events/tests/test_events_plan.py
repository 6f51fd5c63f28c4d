"""The activity plan: kinds, goal, Markdown, hosts, zones, windows, visibility, approval, limits.

Through the events API on the real database and NATS; memberships arrive as members' own
snapshots (servicekit.testing.membership), privileges included.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from sqlmodel import col, select

from hearth_events.models import Activity, Registration
from servicekit.ids import utcnow
from servicekit.testing.harness import Identities, RunningService, eventually

PROBLEM = "application/problem+json"
OPERATOR = uuid.UUID("00000000-0000-7000-8000-000000000001")


def body(community_id: uuid.UUID, **extra: Any) -> dict[str, Any]:
    """A valid POST /activities body starting in two days."""
    starts = utcnow() + timedelta(days=2)
    return {
        "community_id": str(community_id),
        "title": "Plan review",
        "kind": "online_lecture",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=2)).isoformat(),
        "capacity": 10,
        **extra,
    }


def staff(identities: Identities) -> dict[str, str]:
    return identities.headers(OPERATOR, "operator")


async def create(
    events: RunningService, identities: Identities, community_id: uuid.UUID, **extra: Any
) -> dict[str, Any]:
    r = await events.client.post(
        "/activities", json=body(community_id, **extra), headers=staff(identities)
    )
    assert r.status_code == 201, r.text
    return r.json()


async def test_an_activity_carries_its_plan(
    events: RunningService, identities: Identities, directory, published
) -> None:
    community_id, [host, member] = await directory.community(events, members=2)
    starts = utcnow().replace(microsecond=0) + timedelta(days=3)
    created = await create(
        events,
        identities,
        community_id,
        kind="quiz",  # an old name, stored as the new one
        starts_at=starts.isoformat(),
        ends_at=(starts + timedelta(hours=1)).isoformat(),
        timezone="Asia/Shanghai",
        goal="Thirty new members try the product",
        goal_metric="joins",
        description="# Agenda\n\n<script>alert(1)</script> [x](javascript:alert(1)) **bold**",
        hosts=[str(host)],
        location="Room 3",
    )
    assert created["kind"] == "knowledge_contest"
    assert created["goal_metric"] == "joins" and created["hosts"] == [str(host)]
    html = created["description_html"]
    assert "<h1>Agenda</h1>" in html and "<strong>bold</strong>" in html
    assert "<script" not in html and 'href="javascript' not in html, html
    # UTC stored; the activity's own zone shown too (+08:00 in Shanghai).
    local = (starts + timedelta(hours=8)).replace(tzinfo=None).isoformat()
    assert created["starts_at_local"] == f"{local}+08:00", created["starts_at_local"]
    assert created["reminder_minutes"] == [1440, 60]

    # Bad plans are 422 problems: unknown zone, metric outside the catalogue, stranger hosts.
    for extra in (
        {"timezone": "Mars/Olympus"},
        {"goal_metric": "vibes"},
        {"kind": "rave"},
        {"visibility": "communities"},  # without open_to
        {"registration_opens_at": starts.isoformat(), "registration_closes_at": starts.isoformat()},
    ):
        r = await events.client.post(
            "/activities", json=body(community_id, **extra), headers=staff(identities)
        )
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, (extra, r.text)
    r = await events.client.post(
        "/activities", json=body(community_id, hosts=[str(uuid.uuid4())]), headers=staff(identities)
    )
    assert r.status_code == 422 and r.json()["type"].endswith(":hosts-not-members"), r.text

    # A host manages the activity (edit, list registrations); a plain member does not.
    url = f"/activities/{created['id']}"
    r = await events.client.patch(
        url,
        json={"title": "Plan review II", "timezone": "Europe/Berlin"},
        headers=identities.headers(host),
    )
    assert r.status_code == 200, r.text
    assert r.json()["title"] == "Plan review II" and r.json()["starts_at_local"].endswith(
        ("+01:00", "+02:00")
    )
    r = await events.client.get(f"{url}/registrations", headers=identities.headers(host))
    assert r.status_code == 200
    for method, path, payload in (
        ("PATCH", url, {"title": "mine"}),
        ("GET", f"{url}/registrations", None),
        ("POST", f"{url}/transitions", {"to": "cancelled"}),
    ):
        r = await events.client.request(
            method, path, json=payload, headers=identities.headers(member)
        )
        assert r.status_code == 403, (method, path, r.text)
    r = await events.client.patch(
        url,
        json={"ends_at": (starts - timedelta(hours=1)).isoformat()},
        headers=identities.headers(host),
    )
    assert r.status_code == 422 and r.json()["type"].endswith(":invalid-activity"), r.text
    [updated] = await published("events.activity.updated.v1", 1)
    assert updated.data["changed"] == ["timezone", "title"]
    assert updated.data["community_id"] == str(community_id)


async def test_registration_window_priority_and_deadline(
    events: RunningService, identities: Identities, directory
) -> None:
    community_id, [plain] = await directory.community(events, members=1)
    vip = uuid.uuid4()
    await directory.membership(community_id, vip, tier="gold", privileges=["priority_registration"])

    async def arrived() -> bool:
        from hearth_events.models import CommunityMembership

        async with events.runtime.db.session() as session:
            return await session.get(CommunityMembership, (community_id, vip)) is not None

    await eventually(arrived)
    opens = utcnow() + timedelta(hours=2)
    activity = await create(
        events,
        identities,
        community_id,
        registration_opens_at=opens.isoformat(),
        priority_hours=3,
    )
    url = f"/activities/{activity['id']}/registrations"
    r = await events.client.post(url, headers=identities.headers(plain))
    assert r.status_code == 409 and r.json()["type"].endswith(":registration-not-open")
    assert r.json()["opens_at"].startswith(opens.isoformat()[:16])
    r = await events.client.post(url, headers=identities.headers(vip))
    assert r.status_code == 201 and r.json()["status"] == "confirmed", r.text

    # A window that has closed names when; the deadline stops members cancelling themselves.
    closed = await create(
        events,
        identities,
        community_id,
        registration_opens_at=(utcnow() - timedelta(days=1)).isoformat(),
        registration_closes_at=(utcnow() - timedelta(minutes=1)).isoformat(),
    )
    r = await events.client.post(
        f"/activities/{closed['id']}/registrations", headers=identities.headers(plain)
    )
    assert r.status_code == 409 and r.json()["type"].endswith(":registration-closed")
    assert "closed_at" in r.json()
    strict = await create(
        events, identities, community_id, cancellation_deadline=utcnow().isoformat()
    )
    r = await events.client.post(
        f"/activities/{strict['id']}/registrations", headers=identities.headers(plain)
    )
    assert r.status_code == 201
    r = await events.client.delete(
        f"/activities/{strict['id']}/registrations/me", headers=identities.headers(plain)
    )
    assert r.status_code == 409 and r.json()["type"].endswith(":cancellation-deadline-passed")
    assert r.json()["deadline"]


async def test_visibility_opens_an_activity_to_listed_communities(
    events: RunningService, identities: Identities, directory
) -> None:
    home, [insider] = await directory.community(events, members=1)
    partner, [guest] = await directory.community(events, members=1)
    _elsewhere, [outsider] = await directory.community(events, members=1)
    closed = await create(events, identities, home)
    shared = await create(
        events, identities, home, visibility="communities", open_to=[str(partner)]
    )
    for who, activity, seen in (
        (insider, closed, 200),
        (guest, closed, 403),
        (guest, shared, 200),
        (outsider, shared, 403),
    ):
        r = await events.client.get(
            f"/activities/{activity['id']}", headers=identities.headers(who)
        )
        assert r.status_code == seen, (who, activity["visibility"], r.text)
    r = await events.client.post(
        f"/activities/{shared['id']}/registrations", headers=identities.headers(guest)
    )
    assert r.status_code == 201 and r.json()["community_id"] == str(home)
    r = await events.client.post(
        f"/activities/{shared['id']}/registrations", headers=identities.headers(outsider)
    )
    assert r.status_code == 403


QUESTIONS = [
    {"id": "why", "prompt": "Why do you want to come?", "max_length": 50},
    {"id": "track", "prompt": "Track", "kind": "choice", "choices": ["web", "data"]},
    {"id": "diet", "prompt": "Dietary needs", "required": False},
]


async def test_approval_with_questions(
    events: RunningService, identities: Identities, directory, published
) -> None:
    community_id, users = await directory.community(events, members=4)
    a, b, c, d = users
    activity = await create(
        events, identities, community_id, capacity=1, requires_approval=True, questions=QUESTIONS
    )
    url = f"/activities/{activity['id']}/registrations"
    # Answers are checked against the questions: every problem named.
    r = await events.client.post(
        url,
        json={"answers": {"why": "x" * 51, "track": "ops", "extra": "?"}},
        headers=identities.headers(a),
    )
    assert r.status_code == 422 and r.json()["type"].endswith(":invalid-answers"), r.text
    assert {e["question"] for e in r.json()["errors"]} == {"why", "track", "extra"}
    r = await events.client.post(url, json={}, headers=identities.headers(a))
    assert r.status_code == 422 and {e["question"] for e in r.json()["errors"]} == {"why", "track"}

    ids = {}
    for user in (a, b, c, d):
        r = await events.client.post(
            url,
            json={"answers": {"why": " learning ", "track": "data"}},
            headers=identities.headers(user),
        )
        assert r.status_code == 201 and r.json()["status"] == "pending", r.text
        ids[user] = r.json()["id"]
    assert r.json()["answers"] == {"why": "learning", "track": ["data"]}
    again = await events.client.post(url, headers=identities.headers(a))
    assert again.status_code == 200 and again.json()["status"] == "pending"

    host = staff(identities)

    async def decide(user: uuid.UUID, verb: str, **payload: Any) -> Any:
        return await events.client.post(
            f"{url}/{ids[user]}/{verb}", json=payload or None, headers=host
        )

    r = await events.client.post(f"{url}/{ids[a]}/approve", headers=identities.headers(b))
    assert r.status_code == 403  # members do not decide
    assert (await decide(a, "approve")).json()["status"] == "confirmed"
    assert (await decide(a, "approve")).json()["status"] == "confirmed"  # idempotent
    assert (await decide(b, "approve")).json()["status"] == "waitlisted"
    assert (await decide(c, "approve")).json()["status"] == "waitlisted"
    # Rejecting a pending request frees nothing: B and C still wait.
    r = await decide(d, "reject", reason="full house")
    assert r.json()["status"] == "rejected" and r.json()["decision_reason"] == "full house"
    assert (await decide(d, "approve")).status_code == 409
    r = await events.client.get(url, headers=host)
    assert [x["status"] for x in r.json()["items"]][-2:] == ["waitlisted", "waitlisted"]
    # Rejecting the confirmed seat promotes the first waitlisted (B), once.
    assert (await decide(a, "reject")).json()["status"] == "rejected"
    [promoted] = await published("events.registration.promoted.v1", 1)
    assert promoted.data["user_id"] == str(b)
    approved = await published("events.registration.approved.v1", 3)
    assert [(e.data["user_id"], e.data["status"]) for e in approved] == [
        (str(a), "confirmed"),
        (str(b), "waitlisted"),
        (str(c), "waitlisted"),
    ]
    rejected = await published("events.registration.rejected.v1", 2)
    assert [(e.data["user_id"], e.data["was"]) for e in rejected] == [
        (str(d), "pending"),
        (str(a), "confirmed"),
    ]
    for e in approved + rejected:
        assert e.data["community_id"] == str(community_id)
        assert e.data["activity_id"] == activity["id"]
    # A rejected member registering again is told where they stand, not queued again.
    r = await events.client.post(url, headers=identities.headers(d))
    assert r.status_code == 200 and r.json()["status"] == "rejected"


async def test_two_cancellations_racing_promote_exactly_two_in_order(
    events: RunningService, identities: Identities, directory, published
) -> None:
    community_id, users = await directory.community(events, members=6)
    activity = await create(events, identities, community_id, capacity=2)
    url = f"/activities/{activity['id']}/registrations"
    for user in users:
        r = await events.client.post(url, headers=identities.headers(user))
        assert r.status_code == 201, r.text
    first, second, *waiting = users
    results = await asyncio.gather(
        *(events.client.delete(f"{url}/me", headers=identities.headers(u)) for u in (first, second))
    )
    assert [r.status_code for r in results] == [200, 200]
    promoted = await published("events.registration.promoted.v1", 2)
    await asyncio.sleep(0.5)  # nothing else arrives
    promoted = await published("events.registration.promoted.v1", 2)
    assert [e.data["user_id"] for e in promoted] == [str(waiting[0]), str(waiting[1])]
    async with events.runtime.db.session() as session:
        row = await session.get(Activity, uuid.UUID(activity["id"]))
        assert row is not None and row.seats_taken == 2
        statuses = (
            await session.exec(
                select(Registration.user_id, Registration.status)
                .where(col(Registration.activity_id) == uuid.UUID(activity["id"]))
                .order_by(col(Registration.position))
            )
        ).all()
    assert [s for _, s in statuses] == [
        "cancelled",
        "cancelled",
        "confirmed",
        "confirmed",
        "waitlisted",
        "waitlisted",
    ]


async def test_a_community_may_limit_waitlists_per_member(
    events: RunningService, identities: Identities, directory
) -> None:
    community_id, [owner_less, member] = await directory.community(events, members=2)
    settings_url = f"/communities/{community_id}/activity-settings"
    r = await events.client.put(
        settings_url, json={"max_waitlists": 1}, headers=identities.headers(member)
    )
    assert r.status_code == 403
    r = await events.client.put(settings_url, json={"max_waitlists": 1}, headers=staff(identities))
    assert r.status_code == 200 and r.json()["max_waitlists"] == 1
    r = await events.client.get(settings_url, headers=identities.headers(member))
    assert r.json()["max_waitlists"] == 1
    full = [await create(events, identities, community_id, capacity=1) for _ in range(3)]
    for activity in full:
        r = await events.client.post(
            f"/activities/{activity['id']}/registrations", headers=identities.headers(owner_less)
        )
        assert r.json()["status"] == "confirmed"
    r = await events.client.post(
        f"/activities/{full[0]['id']}/registrations", headers=identities.headers(member)
    )
    assert r.json()["status"] == "waitlisted"
    r = await events.client.post(
        f"/activities/{full[1]['id']}/registrations", headers=identities.headers(member)
    )
    assert r.status_code == 409 and r.json()["type"].endswith(":waitlist-limit"), r.text
    assert r.json()["limit"] == 1
    # The refused attempt left no trace; a seat is never limited.
    async with events.runtime.db.session() as session:
        rows = (
            await session.exec(select(Registration).where(Registration.user_id == member))
        ).all()
    assert len(rows) == 1


async def test_a_cancelled_activity_voids_every_registration(
    events: RunningService, identities: Identities, directory, published
) -> None:
    community_id, users = await directory.community(events, members=3)
    activity = await create(events, identities, community_id, capacity=2)
    url = f"/activities/{activity['id']}/registrations"
    for user in users:
        await events.client.post(url, headers=identities.headers(user))
    r = await events.client.post(
        f"/activities/{activity['id']}/transitions",
        json={"to": "cancelled"},
        headers=staff(identities),
    )
    assert r.status_code == 200 and r.json()["seats_taken"] == 0, r.text
    voided = await published("events.registration.voided.v1", 3)
    assert sorted(e.data["user_id"] for e in voided) == sorted(str(u) for u in users)
    assert sorted(e.data["was"] for e in voided) == ["confirmed", "confirmed", "waitlisted"]
    assert all(e.data["title"] == "Plan review" for e in voided)
    [cancelled] = await published("events.activity.cancelled.v1", 1)
    assert cancelled.data["registrants"] == 3
    r = await events.client.get(url, headers=staff(identities))
    assert {x["status"] for x in r.json()["items"]} == {"cancelled"}


async def test_lifecycle_moves_publish_started_and_ended(
    events: RunningService, identities: Identities, directory, published
) -> None:
    community_id, [member] = await directory.community(events, members=1)
    activity = await create(events, identities, community_id)
    await events.client.post(
        f"/activities/{activity['id']}/registrations", headers=identities.headers(member)
    )
    for to in ("ongoing", "ended"):
        r = await events.client.post(
            f"/activities/{activity['id']}/transitions", json={"to": to}, headers=staff(identities)
        )
        assert r.status_code == 200, r.text
    [started] = await published("events.activity.started.v1", 1)
    [ended] = await published("events.activity.ended.v1", 1)
    assert started.data["confirmed"] == 1 and started.data["community_id"] == str(community_id)
    assert ended.data["activity_id"] == activity["id"]


async def test_the_directory_sees_privileges(events: RunningService, directory) -> None:
    community_id, _ = await directory.community(events)
    user = uuid.uuid4()
    await directory.membership(community_id, user, privileges=["priority_registration"])

    async def arrived() -> bool:
        from hearth_events.models import CommunityMembership

        async with events.runtime.db.session() as session:
            row = await session.get(CommunityMembership, (community_id, user))
            return row is not None and row.privileges == ["priority_registration"]

    await eventually(arrived)
