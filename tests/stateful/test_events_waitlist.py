"""Registration and waitlist as a state machine, against the real events service over HTTP.

A pool of members registers, cancels and comes back, and an organiser raises or lowers the
capacity, in any order Hypothesis finds. After every step the service's registrations must
equal a model: nobody twice, confirmed <= capacity, the waitlist in first-come order, a freed
seat (a cancellation or a raised capacity) always going to the waitlist's head, and a capacity
below the seats taken refused.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import func
from sqlmodel import col, select

from hearth_events.app import definition
from hearth_events.models import CommunityMembership
from servicekit.ids import utcnow
from servicekit.testing.harness import RunningService, eventually
from servicekit.testing.membership import Snapshots
from servicekit.testing.stateful import Stage

OPERATOR = uuid.UUID("00000000-0000-7000-8000-000000000001")
POOL = 4


class World:
    """The running service, and a community with a pool of members it knows."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.service: RunningService = stage.start(definition)
        self.community_id = uuid.uuid4()
        self.members = [uuid.uuid4() for _ in range(POOL)]
        broker, snapshots = stage.publisher(), Snapshots()

        async def seed() -> None:
            await broker.publish(snapshots.membership(self.community_id, OPERATOR, role="owner"))
            for user in self.members:
                await broker.publish(snapshots.membership(self.community_id, user))

            async def arrived() -> bool:
                async with self.service.runtime.db.session() as session:
                    stmt = select(func.count()).where(
                        col(CommunityMembership.community_id) == self.community_id
                    )
                    return (await session.exec(stmt)).one() >= POOL + 1

            await eventually(arrived)

        stage.loop.run(seed())

    def call(self, method: str, url: str, user: uuid.UUID, **kwargs: Any) -> Any:
        """One HTTP request as `user` (the operator with platform staff roles)."""
        roles = ("operator",) if user == OPERATOR else ()
        headers = self.stage.identities.headers(user, *roles)
        return self.stage.loop.run(
            self.service.client.request(method, url, headers=headers, **kwargs)
        )


@pytest.fixture(scope="module")
def world(stage: Stage) -> World:
    return World(stage)


class Waitlist(RuleBasedStateMachine):
    """One fresh activity per example; the model is the line of active registrations."""

    def __init__(self, world: World) -> None:
        super().__init__()
        self.world = world
        self.capacity = 1
        starts = utcnow() + timedelta(days=1)
        r = world.call(
            "POST",
            "/activities",
            OPERATOR,
            json={
                "community_id": str(world.community_id),
                "title": "Stateful meetup",
                "kind": "other",
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(hours=1)).isoformat(),
                "capacity": self.capacity,
            },
        )
        assert r.status_code == 201, r.text
        self.url = f"/activities/{r.json()['id']}"
        self.line: list[uuid.UUID] = []  # active registrations, first come first
        self.confirmed: set[uuid.UUID] = set()
        self.ever: set[uuid.UUID] = set()

    def _fill(self) -> None:
        """Free seats go to the waitlist's head, in order."""
        for user in self.line:
            if len(self.confirmed) >= self.capacity:
                break
            self.confirmed.add(user)

    @rule(who=st.integers(0, POOL - 1))
    def register(self, who: int) -> None:
        user = self.world.members[who]
        r = self.world.call("POST", f"{self.url}/registrations", user)
        if user in self.line:
            assert r.status_code == 200, r.text  # again: the same registration
        else:
            assert r.status_code == 201, r.text
            self.line.append(user)
            self.ever.add(user)
            self._fill()
        expected = "confirmed" if user in self.confirmed else "waitlisted"
        assert r.json()["status"] == expected, (r.json(), self.line, self.capacity)

    @rule(who=st.integers(0, POOL - 1))
    def cancel(self, who: int) -> None:
        user = self.world.members[who]
        r = self.world.call("DELETE", f"{self.url}/registrations/me", user)
        if user not in self.ever:
            assert r.status_code == 404, r.text
            return
        assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
        if user in self.line:
            self.line.remove(user)
            self.confirmed.discard(user)
            self._fill()

    @rule(capacity=st.integers(1, POOL - 1))
    def change_capacity(self, capacity: int) -> None:
        r = self.world.call("PUT", f"{self.url}/capacity", OPERATOR, json={"capacity": capacity})
        if capacity < len(self.confirmed):
            assert r.status_code == 409, r.text
            assert r.json()["type"] == "urn:hearth:problem:capacity-below-seats-taken"
            return
        assert r.status_code == 200, r.text
        self.capacity = capacity
        self._fill()
        assert r.json()["seats_taken"] == len(self.confirmed)

    @invariant()
    def matches_the_model(self) -> None:
        r = self.world.call("GET", f"{self.url}/registrations?limit=100", OPERATOR)
        assert r.status_code == 200, r.text
        rows = [x for x in r.json()["items"] if x["status"] in ("confirmed", "waitlisted")]
        users = [uuid.UUID(x["user_id"]) for x in rows]
        assert len(users) == len(set(users)), "a member holds two active registrations"
        confirmed = {uuid.UUID(x["user_id"]) for x in rows if x["status"] == "confirmed"}
        assert len(confirmed) <= self.capacity
        assert confirmed == self.confirmed, (rows, self.line, self.capacity)
        waiting = [uuid.UUID(x["user_id"]) for x in rows if x["status"] == "waitlisted"]
        assert waiting == [u for u in self.line if u not in self.confirmed], "waitlist not FIFO"
        # Listed in first-come order, and nobody waits while a seat is free.
        assert users == self.line
        assert not waiting or len(confirmed) == self.capacity


def test_registration_and_waitlist_follow_the_model(world: World) -> None:
    run_state_machine_as_test(
        lambda: Waitlist(world),
        settings=settings(
            max_examples=10,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
