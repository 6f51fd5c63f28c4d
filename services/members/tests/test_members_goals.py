"""Goals: catalogue metrics only, progress and status from metrics' measured facts over NATS."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import event

from hearth_members.app import definition
from members_testkit import PROBLEM, publish
from servicekit.ids import utcnow
from servicekit.runtime import ServiceRuntime
from servicekit.testing.harness import Identities, RunningService, eventually

MEASURED = "hearth.metrics.community.measured.v1"


async def measured(
    nats_client: Any, prefix: str, community_id: Any, metric: str, value: float, at: datetime
) -> None:
    """Publish metrics.community.measured.v1 as metrics' relay would."""
    await publish(
        nats_client,
        prefix,
        MEASURED,
        {
            "community_id": str(community_id),
            "metric": metric,
            "value": value,
            "measured_at": at.isoformat(),
        },
    )


def handled(runtime: ServiceRuntime) -> dict[str, int]:
    """The stats of the members__measurements consumer."""
    [consumer] = [c for c in runtime.consumers if c.consumer.name == "members__measurements"]
    return consumer.stats


async def goals_of(svc: RunningService, url: str, headers: dict[str, str]) -> dict[str, dict]:
    """The community's goals by metric."""
    r = await svc.client.get(url + "/goals", headers=headers)
    assert r.status_code == 200, r.text
    return {g["metric"]: g for g in r.json()}


async def test_goals_take_catalogue_metrics_and_only_managers_set_them(
    members: RunningService, identities: Identities, make_world: Any
) -> None:
    w = await make_world(members, identities)
    goal = {"metric": "joins", "target": 40, "deadline": "2030-03-31"}
    for who in (w.mod, w.member):
        r = await members.client.post(w.url + "/goals", json=goal, headers=w.h(who))
        assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    r = await members.client.post(w.url + "/goals", json=goal, headers=w.h(w.admin))
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["owner_id"] == str(w.admin)
    # Nothing measured yet: no numbers, and no note standing in for them.
    assert created["status"] == "no_data"
    assert (created["current"], created["progress"], created["measured_at"]) == (None,) * 3
    assert "progress_note" not in created
    # A metric outside metrics' catalogue is a 422 problem naming the field.
    for metric in ("retention.d30", "Joins", ""):
        r = await members.client.post(
            w.url + "/goals", json={**goal, "metric": metric}, headers=w.h(w.admin)
        )
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, metric
        assert ["body", "metric"] in [e["loc"] for e in r.json()["errors"]]
    r = await members.client.post(
        w.url + "/goals", json={**goal, "target": 0}, headers=w.h(w.admin)
    )
    assert r.status_code == 422
    r = await members.client.get(w.url + "/goals", headers=w.h(w.member))
    assert [g["metric"] for g in r.json()] == ["joins"]
    url = f"{w.url}/goals/{created['id']}"
    assert (await members.client.delete(url, headers=w.h(w.member))).status_code == 403
    assert (await members.client.delete(url, headers=w.h(w.owner))).status_code == 204
    assert (await members.client.delete(url, headers=w.h(w.owner))).status_code == 404


async def test_goal_progress_and_status_follow_measurements(
    members: RunningService,
    identities: Identities,
    make_world: Any,
    nats_client: Any,
    subject_prefix: str,
) -> None:
    w = await make_world(members, identities)
    cid = w.community["id"]
    yesterday = (utcnow() - timedelta(days=1)).date()
    for body in (
        {"metric": "joins", "target": 4, "deadline": "2030-12-31"},
        {"metric": "posts_published", "target": 2, "deadline": yesterday.isoformat()},
        {"metric": "registrations", "target": 10, "deadline": "2030-12-31"},
    ):
        r = await members.client.post(w.url + "/goals", json=body, headers=w.h(w.owner))
        assert r.status_code == 201, r.text
    t0 = utcnow()
    await measured(nats_client, subject_prefix, cid, "joins", 3, t0)
    await measured(nats_client, subject_prefix, cid, "posts_published", 1, t0)
    # Another community's numbers never show up here.
    await measured(nats_client, subject_prefix, uuid.uuid4(), "registrations", 99, t0)

    async def measured_twice() -> dict[str, dict]:
        goals = await goals_of(members, w.url, w.h(w.member))
        return goals if goals["posts_published"]["current"] is not None else {}

    goals = await eventually(measured_twice)
    joins = goals["joins"]
    assert (joins["current"], joins["progress"], joins["status"]) == (3, 0.75, "on_track")
    assert datetime.fromisoformat(joins["measured_at"]) == t0
    late = goals["posts_published"]
    assert (late["current"], late["progress"], late["status"]) == (1, 0.5, "missed")
    assert goals["registrations"]["status"] == "no_data"
    assert goals["registrations"]["current"] is None

    # Past the target: achieved, and progress is not capped at 100 %.
    await measured(nats_client, subject_prefix, cid, "joins", 5, t0 + timedelta(seconds=1))

    async def achieved() -> dict:
        joins = (await goals_of(members, w.url, w.h(w.member)))["joins"]
        return joins if joins["status"] == "achieved" else {}

    assert (await eventually(achieved))["progress"] == 1.25
    # A new goal answers with the measurement already known.
    r = await members.client.post(
        w.url + "/goals",
        json={"metric": "joins", "target": 10, "deadline": date(2031, 1, 1).isoformat()},
        headers=w.h(w.admin),
    )
    assert r.status_code == 201
    assert (r.json()["current"], r.json()["progress"], r.json()["status"]) == (5, 0.5, "on_track")


async def test_an_older_measurement_arriving_late_does_not_overwrite(
    any_database_url: str,
    launch: Any,
    pii_settings: dict[str, Any],
    identities: Identities,
    make_world: Any,
    nats_client: Any,
    subject_prefix: str,
) -> None:
    svc = await launch(definition, database_url=any_database_url, **pii_settings)
    w = await make_world(svc, identities)
    cid = w.community["id"]
    r = await svc.client.post(
        w.url + "/goals",
        json={"metric": "posts_submitted", "target": 10, "deadline": "2030-12-31"},
        headers=w.h(w.owner),
    )
    assert r.status_code == 201
    stats = handled(svc.runtime)
    t = datetime(2030, 6, 1, 12, 0, 0, 500_000, tzinfo=UTC)

    async def current_after(deliveries: int) -> dict:
        async def done() -> bool:
            return stats["handled"] >= deliveries

        await eventually(done)
        return (await goals_of(svc, w.url, w.h(w.member)))["posts_submitted"]

    await measured(nats_client, subject_prefix, cid, "posts_submitted", 7, t)
    goal = await current_after(1)
    assert goal["current"] == 7
    # Older by a millisecond; older although its text sorts later (another offset); the same
    # instant again: none of them replaces the stored value.
    plus8 = timezone(timedelta(hours=8))
    for value, at in (
        (6, t - timedelta(milliseconds=1)),
        (5, (t - timedelta(seconds=1)).astimezone(plus8)),
        (4, t),
    ):
        await measured(nats_client, subject_prefix, cid, "posts_submitted", value, at)
    goal = await current_after(4)
    assert goal["current"] == 7
    assert datetime.fromisoformat(goal["measured_at"]) == t
    # A newer one does, whatever offset it is written in.
    newer = (t + timedelta(microseconds=1)).astimezone(plus8)
    await measured(nats_client, subject_prefix, cid, "posts_submitted", 8, newer)
    goal = await current_after(5)
    assert goal["current"] == 8
    assert datetime.fromisoformat(goal["measured_at"]) == newer


async def test_listing_goals_costs_the_same_queries_for_one_goal_or_many(
    members: RunningService, identities: Identities, make_world: Any
) -> None:
    w = await make_world(members, identities)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # Only goal reads: the relay, consumers and loops share the engine meanwhile.
        if "goals" in statement or "community_measurements" in statement:
            statements.append(statement)

    async def queries_to_list() -> int:
        statements.clear()
        r = await members.client.get(w.url + "/goals", headers=w.h(w.member))
        assert r.status_code == 200
        return len(statements)

    async def add(metric: str) -> None:
        body = {"metric": metric, "target": 5, "deadline": "2030-12-31"}
        r = await members.client.post(w.url + "/goals", json=body, headers=w.h(w.owner))
        assert r.status_code == 201

    engine = members.runtime.db.engine.sync_engine
    await add("joins")
    event.listen(engine, "before_cursor_execute", count)
    try:
        one = await queries_to_list()
        for metric in ("posts_submitted", "posts_published", "registrations", "joins"):
            await add(metric)
        many = await queries_to_list()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert one == many == 1  # goals joined to their measurements in one SELECT


async def test_setting_and_removing_a_goal_publishes_it(
    members: RunningService, identities: Identities, make_world: Any, broker: Any
) -> None:
    w = await make_world(members, identities)
    goal = {"metric": "registrations", "target": 25, "deadline": "2030-06-30"}
    r = await members.client.post(w.url + "/goals", json=goal, headers=w.h(w.owner))
    assert r.status_code == 201, r.text
    created = r.json()
    assert (
        await members.client.delete(f"{w.url}/goals/{created['id']}", headers=w.h(w.owner))
    ).status_code == 204

    async def published() -> list[Any]:
        found = await broker.read(f"{broker.prefix}.members.goal.>")
        return found if len(found) >= 2 else []

    set_, removed = await eventually(published)
    assert set_.type == "hearth.members.goal.set.v1"
    assert set_.data == {
        "goal_id": created["id"],
        "community_id": w.community["id"],
        "metric": "registrations",
        "target": 25.0,
        "deadline": "2030-06-30",
        "owner_id": str(w.owner),
        "set_at": set_.data["set_at"],
    }
    assert removed.type == "hearth.members.goal.removed.v1"
    assert removed.data["goal_id"] == created["id"] and removed.subject == w.community["id"]
