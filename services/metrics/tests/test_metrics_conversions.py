"""Conversions: HTTP (API key scope) and NATS, idempotent by the caller's id; conversion rates."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from metrics_testkit import PROBLEM, community, joined, produced, service_key

from hearth_metrics.conversions.consumers import REPORTED
from hearth_metrics.conversions.events import ConversionRecorded
from hearth_metrics.conversions.models import Conversion
from hearth_metrics.funnels.consumers import funnel
from hearth_metrics.measures.consumers import measures
from servicekit.events import Envelope
from servicekit.ids import uuid7
from servicekit.testing.harness import Identities, RunningService, eventually, relay_envelope

RECORDED = "hearth.metrics.conversion.recorded.v1"
WRITE = "metrics:conversions:write"
T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)


async def recorded(metrics: RunningService, broker: Any, community_id: uuid.UUID) -> list[Envelope]:
    """conversion.recorded events of a community, once the relay has published everything."""

    async def drained() -> bool:
        pending, _ = await metrics.runtime.relay.backlog()
        return pending == 0

    await eventually(drained)
    found = await broker.read(f"{broker.prefix}.metrics.conversion.recorded.v1")
    return [e for e in found if e.data["community_id"] == str(community_id)]


async def rows(metrics: RunningService, community_id: uuid.UUID) -> list[Conversion]:
    from sqlmodel import select

    async with metrics.runtime.db.session() as s:
        return list(
            (await s.exec(select(Conversion).where(Conversion.community_id == community_id))).all()
        )


def body(community_id: uuid.UUID, **over: Any) -> dict[str, Any]:
    """A purchase by a member."""
    return {
        "id": f"order-{uuid.uuid4().hex[:8]}",
        "kind": "purchase",
        "community_id": str(community_id),
        "user_id": str(uuid.uuid4()),
        "value": 99.5,
        "currency": "CNY",
        "occurred_at": T0.isoformat(),
    } | over


async def test_http_conversions_are_idempotent_by_the_callers_id(
    metrics: RunningService, broker: Any, identities: Identities
) -> None:
    cid = uuid.uuid4()
    key = service_key(identities, WRITE)
    sent = body(cid, activity_id=str(uuid.uuid4()), invite_channel="wechat")
    r = await metrics.client.post("/conversions", json=sent, headers=key)
    assert r.status_code == 201, r.text
    first = r.json()
    assert (first["external_id"], first["kind"], first["value"]) == (sent["id"], "purchase", 99.5)
    # The same id and payload again: the same conversion, 200, nothing new.
    r = await metrics.client.post("/conversions", json=sent, headers=key)
    assert r.status_code == 200 and r.json()["id"] == first["id"], r.text
    # The same id with another payload: 409, naming the recorded conversion.
    r = await metrics.client.post("/conversions", json=sent | {"value": 1.0}, headers=key)
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM, r.text
    assert r.json()["conversion_id"] == first["id"]
    # Another business system may use the same id: its ids are its own.
    other = service_key(identities, WRITE)
    r = await metrics.client.post("/conversions", json=sent | {"value": 1.0}, headers=other)
    assert r.status_code == 201 and r.json()["id"] != first["id"]

    events = await recorded(metrics, broker, cid)
    assert len(events) == 2
    mine = next(e for e in events if e.data["conversion_id"] == first["id"])
    assert set(mine.data) == {
        "conversion_id",
        "kind",
        "community_id",
        "user_id",
        "activity_id",
        "invite_channel",
        "value",
        "occurred_at",
    }
    got = ConversionRecorded.model_validate(mine.data)
    assert (got.kind, got.invite_channel, got.value, got.occurred_at) == (
        "purchase",
        "wechat",
        99.5,
        T0,
    )
    assert str(got.activity_id) == sent["activity_id"] and mine.subject == str(cid)


async def test_concurrent_reports_of_one_id_record_one_conversion(
    metrics: RunningService, broker: Any, identities: Identities
) -> None:
    cid = uuid.uuid4()
    key = service_key(identities, WRITE)
    sent = body(cid, kind="referral")
    answers = await asyncio.gather(
        *(metrics.client.post("/conversions", json=sent, headers=key) for _ in range(8))
    )
    codes = sorted(r.status_code for r in answers)
    assert codes == [200] * 7 + [201], [r.text for r in answers]
    assert len({r.json()["id"] for r in answers}) == 1
    assert len(await rows(metrics, cid)) == 1
    assert len(await recorded(metrics, broker, cid)) == 1


async def test_who_may_report_conversions(metrics: RunningService, identities: Identities) -> None:
    sent = body(uuid.uuid4())
    for headers, status in (
        (service_key(identities, "metrics:read"), 403),
        (identities.headers(uuid.uuid4()), 403),
        ({}, 401),
    ):
        r = await metrics.client.post("/conversions", json=sent, headers=headers)
        assert r.status_code == status and r.headers["content-type"] == PROBLEM, r.text
    r = await metrics.client.post("/conversions", json=sent, headers=service_key(identities, WRITE))
    assert r.status_code == 201
    # Bad input is a 422 problem, never a 500.
    for bad in ({"kind": "Not A Kind"}, {"value": -1}, {"id": "has spaces"}, {"currency": "yuan"}):
        r = await metrics.client.post(
            "/conversions", json=sent | bad, headers=service_key(identities, WRITE)
        )
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, (bad, r.text)


async def test_nats_conversions_are_idempotent_by_the_callers_id(
    metrics: RunningService, broker: Any
) -> None:
    cid = uuid.uuid4()
    sent = body(cid, kind="partnership", user_id=None)
    env = relay_envelope(REPORTED, subject=str(cid), **sent)
    env = env.model_copy(update={"source": "/crm/acme"})
    await broker.publish(env)
    # The business system retries with a new message id: the same conversion.
    await broker.publish(env.model_copy(update={"id": uuid7()}))
    # And reuses the id for something else: dropped, the first stands.
    changed = env.model_copy(update={"id": uuid7(), "data": sent | {"value": 5.0}})
    await broker.publish(changed)
    consumer = next(
        c for c in metrics.runtime.consumers if c.consumer.name == "metrics__conversions"
    )

    async def all_handled() -> bool:
        return consumer.stats["handled"] >= 3

    await eventually(all_handled)
    found = await rows(metrics, cid)
    assert [(r.kind, r.value, r.source, r.user_id) for r in found] == [
        ("partnership", 99.5, "nats:/crm/acme", None)
    ]
    events = await recorded(metrics, broker, cid)
    assert [e.data["conversion_id"] for e in events] == [str(found[0].id)]


async def test_conversion_rates_by_community_activity_and_channel(
    metrics: RunningService, identities: Identities
) -> None:
    rt = metrics.runtime
    cid, owner, _ = await community(metrics)
    people = [uuid.uuid4() for _ in range(10)]
    channels = ["qr"] * 4 + ["link"] * 6
    for user, channel in zip(people, channels, strict=True):
        await funnel.handle(rt.db, rt.tables, joined(cid, user, T0 - timedelta(days=3), channel))
    activity = uuid.uuid4()
    for user in people[:5]:
        env = produced(
            "hearth.events.registration.confirmed.v1",
            registration_id=uuid7(),
            activity_id=activity,
            community_id=cid,
            user_id=user,
            registered_at=T0 - timedelta(days=1),
        )
        await measures.handle(rt.db, rt.tables, env)
    key = service_key(identities, WRITE)
    reports = [
        body(cid, user_id=str(people[0]), activity_id=str(activity)),  # qr, activity
        body(cid, user_id=str(people[0]), activity_id=str(activity), value=0.5),  # same person
        body(cid, user_id=str(people[1]), activity_id=str(activity)),  # qr, activity
        body(cid, user_id=str(people[5]), invite_channel="partner"),  # its own channel
        body(cid, user_id=str(people[6]), kind="referral", value=None),  # link
    ]
    for sent in reports:
        r = await metrics.client.post("/conversions", json=sent, headers=key)
        assert r.status_code == 201, r.text
    url = f"/communities/{cid}/conversions/rates"
    params = {"start": "2026-03-01", "end": "2026-03-07"}
    r = await metrics.client.get(url, params=params, headers=identities.headers(owner))
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["community"] | {"value": None} == {
        "key": "community",
        "conversions": 5,
        "converted": 4,
        "base": 10,
        "rate": 0.4,
        "value": None,
        "suppressed": None,
    }
    assert got["community"]["value"] == 99.5 * 3 + 0.5
    assert [(a["key"], a["converted"], a["base"], a["rate"]) for a in got["by_activity"]] == [
        (str(activity), 2, 5, 0.4)
    ]
    assert [(c["key"], c["conversions"], c["converted"], c["base"]) for c in got["by_channel"]] == [
        ("link", 1, 1, 6),
        ("partner", 1, 1, 0),
        ("qr", 3, 2, 4),
    ]
    r = await metrics.client.get(
        url, params=params | {"kind": "referral"}, headers=identities.headers(owner)
    )
    assert r.json()["community"]["converted"] == 1
    # A member of the community is refused, a metrics:read key may read.
    r = await metrics.client.get(url, params=params, headers=identities.headers(people[0]))
    assert r.status_code in (403, 404) and r.headers["content-type"] == PROBLEM
    r = await metrics.client.get(
        url, params=params, headers=service_key(identities, "metrics:read")
    )
    assert r.status_code == 200


async def test_rates_of_an_internal_community_with_three_people_are_suppressed(
    metrics: RunningService, identities: Identities
) -> None:
    rt = metrics.runtime
    cid, owner, people = await community(metrics, kind="internal", members=3)
    for user in people:
        await funnel.handle(rt.db, rt.tables, joined(cid, user, T0 - timedelta(days=1), "qr"))
    key = service_key(identities, WRITE)
    for user in people[:2]:
        r = await metrics.client.post(
            "/conversions", json=body(cid, user_id=str(user)), headers=key
        )
        assert r.status_code == 201
    r = await metrics.client.get(
        f"/communities/{cid}/conversions/rates",
        params={"start": "2026-03-01", "end": "2026-03-07"},
        headers=identities.headers(owner),
    )
    got = r.json()
    assert got["community"]["converted"] is None and got["community"]["rate"] is None
    assert got["community"]["suppressed"]
    assert all(c["converted"] is None and c["suppressed"] for c in got["by_channel"])


async def test_a_weekly_conversion_rate_of_an_internal_community_respects_the_floor(
    metrics: RunningService, identities: Identities
) -> None:
    rt = metrics.runtime
    cid, owner, people = await community(metrics, kind="internal", members=12)
    for user in people:
        await funnel.handle(rt.db, rt.tables, joined(cid, user, T0 - timedelta(days=1), "qr"))
    key = service_key(identities, WRITE)
    # 10 of 12 convert: 10 people on one side, 2 on the other (k = 5).
    for user in people[:10]:
        r = await metrics.client.post(
            "/conversions", json=body(cid, user_id=str(user)), headers=key
        )
        assert r.status_code == 201
    week = {"start": "2026-03-02", "end": "2026-03-08"}
    h = identities.headers(owner)
    r = await metrics.client.get(f"/communities/{cid}/conversions/rates", params=week, headers=h)
    assert r.status_code == 200, r.text
    got = r.json()["community"]
    # The rate would reveal the 2 who did not convert: null with a reason, never 10/12.
    assert got["rate"] is None and got["converted"] is None and got["base"] is None
    assert "share" in got["suppressed"]
    # The weekly analysis (the report's totals and series) follows the converting people.
    r = await metrics.client.get(
        f"/communities/{cid}/analysis", params={"period": "week", "start": "2026-03-02"}, headers=h
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    # 10 people converted this week but none the week before (0 shown, not a small count)...
    assert doc["totals"]["conversions"]["current"] == 10
    # ...and 3 converting people in a week are too few: series and totals go.
    for user in [*people[10:], uuid.uuid4()]:
        r = await metrics.client.post(
            "/conversions",
            json=body(cid, user_id=str(user), occurred_at=(T0 + timedelta(days=7)).isoformat()),
            headers=key,
        )
        assert r.status_code == 201
    r = await metrics.client.get(
        f"/communities/{cid}/analysis", params={"period": "week", "start": "2026-03-09"}, headers=h
    )
    doc = r.json()
    assert all(row["conversions"] is None for row in doc["series"])
    for name in ("conversions", "conversion_value"):
        assert doc["totals"][name]["current"] is None and doc["totals"][name]["suppressed"]
    # A customer community shows the same figures.
    open_cid, open_owner, open_people = await community(metrics, kind="customer", members=12)
    for user in open_people:
        await funnel.handle(rt.db, rt.tables, joined(open_cid, user, T0 - timedelta(days=1), "qr"))
    for user in open_people[:10]:
        r = await metrics.client.post(
            "/conversions", json=body(open_cid, user_id=str(user)), headers=key
        )
        assert r.status_code == 201
    r = await metrics.client.get(
        f"/communities/{open_cid}/conversions/rates",
        params=week,
        headers=identities.headers(open_owner),
    )
    assert r.json()["community"]["rate"] == round(10 / 12, 6)
