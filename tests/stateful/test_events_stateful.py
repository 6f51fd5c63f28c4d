"""Events as state machines over HTTP, real database: registration and waitlist; the draw.

Registration and waitlist: a pool of members registers, cancels and comes back, and an
organiser raises or lowers the capacity, in any order Hypothesis finds. After every step the
service's registrations must equal a model: nobody twice, confirmed <= capacity, the waitlist
in first-come order, a freed seat (a cancellation or a raised capacity) always going to the
waitlist's head, and a capacity below the seats taken refused. The draw: see `Draw`.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import func
from sqlmodel import col, select

from hearth_events.app import definition
from hearth_events.draws import verify
from hearth_events.models import CommunityMembership
from servicekit.ids import utcnow
from servicekit.testing.harness import RunningService, eventually
from servicekit.testing.membership import Snapshots
from servicekit.testing.stateful import Stage, bounded

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

    @rule(whos=st.sets(st.integers(0, POOL - 1), min_size=2))
    def register_at_once(self, whos: set[int]) -> None:
        """Several members register at the same instant: seats are still never oversold."""
        users = [self.world.members[i] for i in sorted(whos)]

        async def race() -> list[Any]:
            calls = [
                self.world.service.client.post(
                    f"{self.url}/registrations", headers=self.world.stage.identities.headers(u)
                )
                for u in users
            ]
            return list(await asyncio.gather(*calls))

        responses = dict(zip(users, self.world.stage.loop.run(race()), strict=True))
        newcomers = [u for u in users if u not in self.line]
        for user, r in responses.items():
            assert r.status_code == (201 if user in newcomers else 200), r.text
        # The racers line up in the order the service took them (their positions).
        taken = sorted(newcomers, key=lambda u: responses[u].json()["position"])
        self.line += taken
        self.ever.update(taken)
        self._fill()
        for user, r in responses.items():
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
        settings=bounded(10, 15),
    )


class Draw(RuleBasedStateMachine):
    """A lucky draw at a fresh activity: commit, reveal, re-draw, complete, in any order.

    Members register and cancel throughout; once committed the eligible list must stay what it
    was at the commit, and the winners must always be what the shipped verifier
    (draws/verify.py) recomputes from the revealed seed, that frozen list and the re-draws.
    """

    def __init__(self, world: World) -> None:
        super().__init__()
        self.world = world
        starts = utcnow() + timedelta(days=1)
        r = world.call(
            "POST",
            "/activities",
            OPERATOR,
            json={
                "community_id": str(world.community_id),
                "title": "Draw night",
                "kind": "other",
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(hours=1)).isoformat(),
                "capacity": 50,
            },
        )
        assert r.status_code == 201, r.text
        self.activity = f"/activities/{r.json()['id']}"
        r = world.call(
            "POST",
            f"{self.activity}/draws",
            OPERATOR,
            json={
                "title": "Prizes",
                "checked_in_only": False,
                "prizes": [{"name": "Mug", "count": 1}, {"name": "Pin", "count": 2}],
            },
        )
        assert r.status_code == 201, r.text
        self.url = f"/draws/{r.json()['id']}"
        self.state = "open"
        self.multiple = False
        self.registered: dict[uuid.UUID, str] = {}  # user -> registration id (confirmed)
        self.ever: set[uuid.UUID] = set()
        self.frozen: list[str] | None = None
        self.redraws: list[dict[str, str]] = []

    @rule(who=st.integers(0, POOL - 1))
    def register(self, who: int) -> None:
        user = self.world.members[who]
        r = self.world.call("POST", f"{self.activity}/registrations", user)
        assert r.status_code in (200, 201) and r.json()["status"] == "confirmed", r.text
        self.registered[user] = r.json()["id"]
        self.ever.add(user)

    @rule(who=st.integers(0, POOL - 1))
    def cancel(self, who: int) -> None:
        user = self.world.members[who]
        r = self.world.call("DELETE", f"{self.activity}/registrations/me", user)
        assert r.status_code == (200 if user in self.ever else 404), r.text
        self.registered.pop(user, None)

    @rule(multiple=st.booleans())
    def change_rules(self, multiple: bool) -> None:
        r = self.world.call("PATCH", self.url, OPERATOR, json={"allow_multiple_wins": multiple})
        if self.state != "open":
            assert r.status_code == 409 and r.json()["type"].endswith("draw-committed"), r.text
            return
        assert r.status_code == 200, r.text
        self.multiple = multiple

    def move(self, action: str, allowed_from: str, to: str) -> Any:
        r = self.world.call("POST", f"{self.url}/{action}", OPERATOR)
        if self.state != allowed_from:
            assert r.status_code == 409, r.text
            return None
        assert r.status_code == 200 and r.json()["state"] == to, r.text
        self.state = to
        return r.json()

    @rule()
    def commit(self) -> None:
        if self.move("commit", "open", "committed") is not None:
            self.frozen = sorted(self.registered.values())

    @rule()
    def reveal(self) -> None:
        self.move("reveal", "committed", "revealed")

    @rule()
    def complete(self) -> None:
        self.move("complete", "revealed", "completed")

    @rule(data=st.data())
    def redraw(self, data: st.DataObject) -> None:
        winners = self.world.call("GET", self.url, OPERATOR).json()["winners"]
        present = [w for w in winners if not w["absent"]]
        if self.state != "revealed" or not present:
            gone = str(uuid.uuid4()) if not present else present[0]["registration_id"]
            r = self.world.call(
                "POST", f"{self.url}/redraws", OPERATOR, json={"registration_id": gone}
            )
            assert r.status_code == 409, r.text
            return
        gone = data.draw(st.sampled_from(sorted({w["registration_id"] for w in present})))
        r = self.world.call("POST", f"{self.url}/redraws", OPERATOR, json={"registration_id": gone})
        assert r.status_code == 200, r.text
        self.redraws += [
            {"prize_id": w["prize_id"], "absent_registration_id": gone}
            for w in present
            if w["registration_id"] == gone
        ]

    @invariant()
    def the_proof_follows_from_seed_and_frozen_list(self) -> None:
        r = self.world.call("GET", f"{self.url}/proof", OPERATOR)
        assert r.status_code == 200, r.text
        proof = r.json()
        assert proof["state"] == self.state
        if self.frozen is None:
            assert proof["eligible"] is None and proof["seed"] is None
            return
        assert proof["eligible"] == self.frozen, "the list changed after the commit"
        assert proof["eligible_sha256"] == verify.list_digest(self.frozen)
        if self.state == "committed":
            assert proof["seed"] is None and proof["winners"] == []
            return
        assert verify.verify(proof) == [], verify.verify(proof)
        expected = verify.run(
            seed=bytes.fromhex(proof["seed"]),
            eligible=self.frozen,
            prizes=proof["prizes"],
            allow_multiple_wins=self.multiple,
            redraws=self.redraws,
        )
        announced = [(w["prize_id"], w["registration_id"], w["replaces"]) for w in proof["winners"]]
        assert announced == [(w["prize_id"], w["registration_id"], w["replaces"]) for w in expected]
        if not self.multiple:
            present = [w["registration_id"] for w in proof["winners"] if not w.get("absent")]
            assert len(present) == len(set(present)), "someone won twice"


def test_the_draw_follows_the_verifier(world: World) -> None:
    run_state_machine_as_test(
        lambda: Draw(world),
        settings=bounded(8, 15),
    )
