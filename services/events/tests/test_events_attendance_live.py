"""Attendance facts reach the real members service: check-ins earn points, no-shows cost them."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from hearth_members.app import definition as members_definition
from servicekit.ids import utcnow
from servicekit.testing.harness import Identities, RunningService, eventually

OPERATOR = uuid.UUID("00000000-0000-7000-8000-000000000001")


async def test_check_ins_and_no_shows_move_members_points(
    launch, identities: Identities, events: RunningService
) -> None:
    members = await launch(members_definition)
    staff = identities.headers(OPERATOR, "operator")
    r = await members.client.post(
        "/communities", json={"name": "Makers", "kind": "customer"}, headers=staff
    )
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    came, stayed_away = uuid.uuid4(), uuid.uuid4()
    for user in (came, stayed_away):
        r = await members.client.post(
            f"/communities/{cid}/members", headers=identities.headers(user)
        )
        assert r.status_code == 201, r.text
    r = await members.client.put(
        f"/communities/{cid}/point-rules",
        json={"rules": {"events.attendance.no_show": -3}},
        headers=staff,
    )
    assert r.status_code == 200, r.text
    r = await members.client.post(
        f"/communities/{cid}/points/adjustments",
        json={"user_id": str(stayed_away), "points": 10, "reason": "welcome"},
        headers=staff,
    )
    assert r.status_code in (200, 201), r.text

    starts = utcnow() + timedelta(minutes=30)
    body = {
        "community_id": cid,
        "title": "Build night",
        "kind": "meetup",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=2)).isoformat(),
        "capacity": 5,
    }

    async def activity_published() -> Any:
        r = await events.client.post("/activities", json=body, headers=staff)
        return r.json() if r.status_code == 201 else None

    activity = await eventually(activity_published)  # once members' snapshots arrived
    for user in (came, stayed_away):

        async def registered(user: uuid.UUID = user) -> bool:
            r = await events.client.post(
                f"/activities/{activity['id']}/registrations", headers=identities.headers(user)
            )
            return r.status_code in (200, 201)

        await eventually(registered)
    r = await events.client.post(
        f"/activities/{activity['id']}/check-ins", json={"user_id": str(came)}, headers=staff
    )
    assert r.status_code == 201, r.text
    for to in ("ongoing", "ended"):
        r = await events.client.post(
            f"/activities/{activity['id']}/transitions", json={"to": to}, headers=staff
        )
        assert r.status_code == 200, r.text

    def balance(user: uuid.UUID, expected: int) -> Any:
        async def check() -> bool:
            r = await members.client.get(
                f"/communities/{cid}/members/{user}/incentives", headers=staff
            )
            assert r.status_code == 200, r.text
            return bool(r.json()["balance"] == expected)

        return check

    await eventually(balance(came, 10))  # "activity attended": 10 points by default
    await eventually(balance(stayed_away, 7))  # the community's no-show penalty
