"""The sanction ladder with expiry as a state machine, against the real moderation service.

Moderators warn a member (1-3 points each) and lift warnings at random times while the clock
moves on. The service reads the real clock and has no clock of its own to set, so time passes
the way it does for the service: every step that advances the model's clock moves this
community's sanctions (their start and end) that far into the past, in the service's database,
then runs the service's own expiry pass. After every step the member's standing over HTTP must
equal the model: the active points (warnings whose time has not run out and that nobody lifted)
and the rungs in force (a mute that lasts its time, a removal or ban until lifted), each rung
made once when the points climb past it, by the warning that crossed it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlmodel import col, select

from hearth_moderation.app import definition
from hearth_moderation.sanctions.models import Sanction
from hearth_moderation.sanctions.scheduler import run_expiry
from servicekit.testing.harness import RunningService
from servicekit.testing.stateful import Stage, bounded

# One model time unit is an hour, so the real seconds a run takes never cross a boundary.
UNIT = 3600
TTL, MUTE = 10, 4  # units: a warning's points count this long; a ladder mute lasts this long
RUNGS = ((7, "ban"), (5, "removal"), (3, "mute"))  # the ladder's defaults, highest first


@dataclass
class Held:
    """A sanction in the model: its level, points, and end in model units (None: until lifted)."""

    id: str
    level: str
    points: int
    ends: int | None


class World:
    """The running moderation service; an operator acts as the community's moderators."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.service: RunningService = stage.start(definition)

    def call(self, method: str, url: str, **kwargs: Any) -> Any:
        """One HTTP request as a platform operator (a different one each time)."""
        headers = self.stage.identities.headers(uuid.uuid4(), "operator")
        return self.stage.loop.run(
            self.service.client.request(method, url, headers=headers, **kwargs)
        )

    def advance(self, community_id: uuid.UUID, units: int) -> None:
        """Let `units` of time pass for a community's sanctions, then run the expiry pass."""
        shift = timedelta(seconds=units * UNIT)

        async def age() -> None:
            async with self.service.runtime.db.session() as session:
                rows = await session.exec(
                    select(Sanction).where(col(Sanction.community_id) == community_id)
                )
                for row in rows.all():
                    row.starts_at -= shift
                    if row.ends_at is not None:
                        row.ends_at -= shift
                    session.add(row)
                await session.commit()
            await run_expiry(self.service.runtime)

        self.stage.loop.run(age())


@pytest.fixture(scope="module")
def world(stage: Stage) -> World:
    return World(stage)


class Ladder(RuleBasedStateMachine):
    """One fresh community and member per example; the model is the sanctions and a clock."""

    def __init__(self, world: World) -> None:
        super().__init__()
        self.world = world
        self.community_id = uuid.uuid4()
        self.user_id = uuid.uuid4()
        self.now = 0
        self.held: list[Held] = []
        r = world.call(
            "PATCH",
            f"/communities/{self.community_id}/sanctions/ladder",
            json={"points_ttl_seconds": TTL * UNIT, "mute_seconds": MUTE * UNIT},
        )
        assert r.status_code == 200, r.text

    def in_force(self) -> list[Held]:
        return [h for h in self.held if h.ends is None or h.ends > self.now]

    def points(self) -> int:
        return sum(h.points for h in self.in_force() if h.level == "warning")

    @rule(points=st.integers(1, 3))
    def warn(self, points: int) -> None:
        before = self.points()
        r = self.world.call(
            "POST",
            f"/communities/{self.community_id}/sanctions",
            json={"user_id": str(self.user_id), "reason": "off topic", "points": points},
        )
        assert r.status_code == 201, r.text
        made = r.json()
        assert made[0]["level"] == "warning" and made[0]["points"] == points
        self.held.append(Held(made[0]["id"], "warning", points, self.now + TTL))
        total = before + points
        crossed = [level for threshold, level in RUNGS if before < threshold <= total][:1]
        assert [m["level"] for m in made[1:]] == crossed, (before, total, made)
        for rung in made[1:]:
            assert rung["cause"] == "ladder" and rung["triggered_by"] == made[0]["id"]
            ends = self.now + MUTE if rung["level"] == "mute" else None
            self.held.append(Held(rung["id"], rung["level"], 0, ends))

    @rule(units=st.integers(1, TTL + 2))
    def time_passes(self, units: int) -> None:
        self.world.advance(self.community_id, units)
        self.now += units

    @precondition(lambda self: bool(self.in_force()))
    @rule(data=st.data())
    def lift(self, data: st.DataObject) -> None:
        held = data.draw(st.sampled_from(self.in_force()))
        r = self.world.call("POST", f"/sanctions/{held.id}/lift", json={"reason": "on reflection"})
        assert r.status_code == 200 and r.json()["status"] == "lifted", r.text
        self.held.remove(held)
        again = self.world.call("POST", f"/sanctions/{held.id}/lift", json={"reason": "twice"})
        assert again.status_code == 409, again.text

    @invariant()
    def standing_matches_the_model(self) -> None:
        r = self.world.call(
            "GET", f"/communities/{self.community_id}/members/{self.user_id}/standing"
        )
        assert r.status_code == 200, r.text
        standing = r.json()
        assert standing["active_points"] == self.points(), (standing, self.held, self.now)
        assert sorted(s["id"] for s in standing["sanctions"]) == sorted(
            h.id for h in self.in_force()
        ), (standing, self.held, self.now)
        mutes = [h for h in self.in_force() if h.level == "mute"]
        assert (standing["muted_until"] is None) == (not mutes)

    @invariant()
    def expired_ones_are_marked(self) -> None:
        """After the expiry pass nothing past its end is still listed as active."""
        r = self.world.call(
            "GET",
            f"/communities/{self.community_id}/sanctions",
            params={"user_id": str(self.user_id), "status": "active", "limit": 100},
        )
        assert r.status_code == 200, r.text
        listed = sorted(s["id"] for s in r.json()["items"])
        assert listed == sorted(h.id for h in self.in_force()), (listed, self.held, self.now)


def test_the_sanction_ladder_with_expiry_follows_the_model(world: World) -> None:
    run_state_machine_as_test(
        lambda: Ladder(world),
        settings=bounded(8, 12),
    )
