"""The points ledger as a state machine, against the real members service over HTTP.

An admin awards and deducts points by hand; members redeem perks (one at a time, or several at
once to race the balance), in any order Hypothesis finds. After every step each member's
balance must equal the model and the sum of their ledger entries, and never be below zero: a
deduction is clamped at the balance, a redemption the balance cannot pay (or the stock cannot
serve) is refused and leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from hearth_members.app import definition
from servicekit.testing.harness import RunningService
from servicekit.testing.stateful import Stage, bounded

MEMBERS = 2
PERKS = ((3, None), (5, 2))  # (cost, stock): None is unlimited


class World:
    """The running members service."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.service: RunningService = stage.start(definition)

    def request(self, method: str, url: str, user: uuid.UUID | None, **kwargs: Any) -> Any:
        """The coroutine of one HTTP request as `user` (None: a platform operator)."""
        ids = self.stage.identities
        headers = ids.headers(None, "operator") if user is None else ids.headers(user)
        return self.service.client.request(method, url, headers=headers, **kwargs)

    def call(self, method: str, url: str, user: uuid.UUID | None, **kwargs: Any) -> Any:
        return self.stage.loop.run(self.request(method, url, user, **kwargs))


@pytest.fixture(scope="module")
def world(stage: Stage) -> World:
    return World(stage)


class Points(RuleBasedStateMachine):
    """One fresh community per example, its members and two perks; the model is the balances."""

    def __init__(self, world: World) -> None:
        super().__init__()
        self.world = world
        r = world.call("POST", "/communities", None, json={"name": "Ledger", "kind": "customer"})
        assert r.status_code == 201, r.text
        self.base = f"/communities/{r.json()['id']}"
        self.members = [uuid.uuid4() for _ in range(MEMBERS)]
        self.balance: dict[uuid.UUID, int] = {}
        for user in self.members:
            r = world.call("POST", f"{self.base}/members", user)
            assert r.status_code == 201, r.text
            self.balance[user] = self.read_balance(user)
        self.perks: list[tuple[str, int]] = []
        self.stock: dict[str, int | None] = {}
        for cost, stock in PERKS:
            body: dict[str, Any] = {"name": f"perk {cost}", "cost": cost, "stock": stock}
            r = world.call("POST", f"{self.base}/perks", None, json=body)
            assert r.status_code == 201, r.text
            self.perks.append((r.json()["id"], cost))
            self.stock[r.json()["id"]] = stock

    def read_balance(self, user: uuid.UUID) -> int:
        r = self.world.call("GET", f"{self.base}/members/{user}/incentives", user)
        assert r.status_code == 200, r.text
        return int(r.json()["balance"])

    @rule(who=st.integers(0, MEMBERS - 1), points=st.integers(-8, 8).filter(bool))
    def adjust(self, who: int, points: int) -> None:
        user = self.members[who]
        body = {"user_id": str(user), "points": points, "reason": "by hand"}
        r = self.world.call("POST", f"{self.base}/points/adjustments", None, json=body)
        assert r.status_code == 201, r.text
        applied = max(points, -self.balance[user])  # a deduction never goes below zero
        self.balance[user] += applied
        assert (r.json()["points"], r.json()["balance"]) == (applied, self.balance[user])

    def expect_redemption(self, user: uuid.UUID, perk: str, cost: int) -> str | None:
        """What the model says one redemption does: None when it succeeds, else the refusal."""
        if self.balance[user] < cost:
            return "insufficient-points"
        stock = self.stock[perk]
        if stock is not None and stock <= 0:
            return "out-of-stock"
        self.balance[user] -= cost
        if stock is not None:
            self.stock[perk] = stock - 1
        return None

    @rule(who=st.integers(0, MEMBERS - 1), which=st.integers(0, len(PERKS) - 1))
    def redeem(self, who: int, which: int) -> None:
        user, (perk, cost) = self.members[who], self.perks[which]
        r = self.world.call("POST", f"{self.base}/perks/{perk}/redemptions", user)
        refusal = self.expect_redemption(user, perk, cost)
        if refusal is None:
            assert r.status_code == 201, r.text
            assert r.json()["balance"] == self.balance[user]
        else:
            assert r.status_code == 409 and r.json()["type"].endswith(refusal), r.text

    @rule(
        who=st.integers(0, MEMBERS - 1), which=st.integers(0, len(PERKS) - 1), n=st.integers(2, 5)
    )
    def redeem_at_once(self, who: int, which: int, n: int) -> None:
        """n redemptions race: exactly as many succeed as the balance and stock allow."""
        user, (perk, cost) = self.members[who], self.perks[which]
        url = f"{self.base}/perks/{perk}/redemptions"

        async def race() -> list[Any]:
            return list(
                await asyncio.gather(*(self.world.request("POST", url, user) for _ in range(n)))
            )

        responses = self.world.stage.loop.run(race())
        codes = sorted(r.status_code for r in responses)
        outcomes = [self.expect_redemption(user, perk, cost) for _ in range(n)]
        wins = outcomes.count(None)
        assert codes == [201] * wins + [409] * (n - wins), [r.text for r in responses]

    @invariant()
    def balances_are_the_sum_of_entries(self) -> None:
        for user in self.members:
            balance = self.read_balance(user)
            assert balance == self.balance[user] >= 0, (balance, self.balance[user])
            r = self.world.call(
                "GET", f"{self.base}/members/{user}/points", user, params={"limit": 200}
            )
            assert r.status_code == 200, r.text
            assert r.json()["next_cursor"] is None
            assert sum(e["points"] for e in r.json()["items"]) == balance, r.json()["items"]


def test_the_points_ledger_follows_the_model(world: World) -> None:
    run_state_machine_as_test(
        lambda: Points(world),
        settings=bounded(8, 15),
    )
