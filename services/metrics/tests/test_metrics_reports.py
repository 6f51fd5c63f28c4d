"""Reports: scheduled exactly once on two replicas, on demand, downloadable, announced."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from metrics_testkit import PROBLEM, community, joined, produced, published, service_key
from sqlmodel import select

from hearth_metrics.app import definition
from hearth_metrics.funnels.consumers import funnel
from hearth_metrics.measures.consumers import measures
from hearth_metrics.reports.events import ReportPublished
from hearth_metrics.reports.models import Report, ReportClaim
from hearth_metrics.reports.scheduler import run_reports_pass
from servicekit.events import Envelope
from servicekit.testing.harness import Identities, RunningService, eventually

WEEK = datetime(2026, 3, 2, tzinfo=UTC)  # Monday
D = timedelta(days=1)


async def announced(svc: RunningService, broker: Any, cid: uuid.UUID) -> list[Envelope]:
    async def drained() -> bool:
        pending, _ = await svc.runtime.relay.backlog()
        return pending == 0

    await eventually(drained)
    found = await broker.read(f"{broker.prefix}.metrics.report.published.v1")
    return [e for e in found if e.data["community_id"] == str(cid)]


async def seed(svc: RunningService, cid: uuid.UUID) -> None:
    """6 joins the week before, 9 this week; posts; an activity; two conversions."""
    rt = svc.runtime
    people = [uuid.uuid4() for _ in range(15)]
    for i, user in enumerate(people):
        at = WEEK - 7 * D + (i % 6) * D if i < 6 else WEEK + (i % 7) * D + timedelta(hours=10)
        await funnel.handle(rt.db, rt.tables, joined(cid, user, at, "qr"))
    for day in range(7):
        for _ in range(day + 1):  # 1..7 posts a day: a rising trend, slope 1
            env = published(cid, people[6 + day], WEEK + day * D + timedelta(hours=12))
            await funnel.handle(rt.db, rt.tables, env)
            await measures.handle(rt.db, rt.tables, env)
    await measures.handle(
        rt.db,
        rt.tables,
        produced(
            "hearth.events.activity.published.v1",
            activity_id=uuid.uuid4(),
            community_id=cid,
            title="Meetup",
            kind="meetup",
            starts_at=WEEK + 2 * D,
            ends_at=WEEK + 2 * D,
            capacity=10,
            published_by=people[0],
            published_at=WEEK,
        ),
    )


async def test_scheduled_reports_are_made_once_on_two_replicas(
    launch: Any, broker: Any, identities: Identities
) -> None:
    first = await launch(definition)
    second = await launch(definition, database_url=first.runtime.settings.database_url)
    cid, owner, members = await community(first, members=6)
    await seed(first, cid)
    key = service_key(identities, "metrics:conversions:write")
    for i in range(2):
        r = await first.client.post(
            "/conversions",
            json={
                "id": f"o-{i}",
                "kind": "purchase",
                "community_id": str(cid),
                "value": 10.0,
                "occurred_at": (WEEK + D).isoformat(),
            },
            headers=key,
        )
        assert r.status_code == 201
    now = WEEK + 8 * D  # Tuesday of the next week
    await asyncio.gather(
        run_reports_pass(first.runtime, now),
        run_reports_pass(second.runtime, now),
        run_reports_pass(first.runtime, now),
    )
    await run_reports_pass(second.runtime, now)  # a later pass finds nothing to do
    async with first.runtime.db.session() as s:
        reports = list((await s.exec(select(Report).where(Report.community_id == cid))).all())
        claims = list(
            (await s.exec(select(ReportClaim).where(ReportClaim.community_id == cid))).all()
        )
    # Each replica's own loop also made today's due reports at start-up: leave those aside.
    reports = [r for r in reports if r.period_start.year < 2026 or r.period_start.month < 6]
    claims = [c for c in claims if c.report_id in {r.id for r in reports}]
    got = sorted((r.period, r.period_start.isoformat(), r.trigger) for r in reports)
    assert got == [
        ("month", "2026-02-01", "scheduled"),
        ("quarter", "2025-10-01", "scheduled"),
        ("week", "2026-03-02", "scheduled"),
    ]
    assert len(claims) == 3
    events = await announced(first, broker, cid)
    events = [e for e in events if e.data["report_id"] in {str(r.id) for r in reports}]
    assert sorted(e.data["report_id"] for e in events) == sorted(str(r.id) for r in reports)
    week = next(r for r in reports if r.period == "week")
    event = next(e for e in events if e.data["report_id"] == str(week.id))
    payload = ReportPublished.model_validate(event.data)
    assert payload.url == f"/api/metrics/communities/{cid}/reports/{week.id}"
    assert (payload.period, str(payload.period_start), payload.trigger) == (
        "week",
        "2026-03-02",
        "scheduled",
    )

    # Downloads: JSON, CSV, SVG, PNG.
    base = f"/communities/{cid}/reports/{week.id}"
    headers = identities.headers(owner)
    r = await first.client.get(base, headers=headers)
    assert r.status_code == 200 and set(r.json()["links"]) == {"json", "csv", "svg", "png"}
    r = await first.client.get(f"{base}/json", headers=headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    doc = json.loads(r.content)
    assert doc["totals"]["new_members"] == {
        "current": 9.0,
        "previous": 6.0,
        "change": 3.0,
        "change_ratio": 0.5,
    }
    assert doc["totals"]["contributions"]["current"] == 28.0
    assert doc["totals"]["conversions"]["current"] == 2.0
    assert doc["totals"]["conversion_value"]["current"] == 20.0
    assert doc["totals"]["activities_held"]["current"] == 1.0
    assert [row["contributions"] for row in doc["series"]] == [1, 2, 3, 4, 5, 6, 7]
    assert doc["trend"]["contributions"]["slope"] == 1.0
    assert doc["trend"]["contributions"]["n"] == 7
    assert doc["correlation"]["n"] == 14
    assert doc["funnel"]["stages"][1]["count"] == 9
    assert doc["health"]["parts"] and doc["health"]["score"] is not None
    r = await first.client.get(f"{base}/csv", headers=headers)
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0][:4] == ["section", "metric", "day", "current"]
    assert ["total", "new_members", "", "9.0", "6.0", "3.0", "0.5"] in rows
    r = await first.client.get(f"{base}/svg", headers=headers)
    assert r.headers["content-type"].startswith("image/svg+xml") and b"<svg" in r.content
    r = await first.client.get(f"{base}/png", headers=headers)
    assert r.headers["content-type"] == "image/png" and r.content[:8] == b"\x89PNG\r\n\x1a\n"
    r = await first.client.get(f"{base}/pdf", headers=headers)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    r = await first.client.get(f"/communities/{cid}/reports/{uuid.uuid4()}", headers=headers)
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    # Members of the community read no reports unless published to them; strangers learn nothing.
    r = await first.client.get(f"{base}/json", headers=identities.headers(members[0]))
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    r = await first.client.get(f"{base}/json", headers=identities.headers(uuid.uuid4()))
    assert r.status_code == 404


async def test_on_demand_report_and_the_live_analysis(
    metrics: RunningService, broker: Any, identities: Identities
) -> None:
    cid, owner, members = await community(metrics, members=2)
    await seed(metrics, cid)
    headers = identities.headers(owner)
    r = await metrics.client.post(
        f"/communities/{cid}/reports",
        json={"period": "week", "start": "2026-03-04"},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["period_start"], made["period_end"], made["trigger"]) == (
        "2026-03-02",
        "2026-03-09",
        "on_demand",
    )
    # The schedule's own pass may also have reported on the new community: only ours is on demand.
    r = await metrics.client.get(f"/communities/{cid}/reports", headers=headers)
    items = r.json()["items"]
    assert [x["id"] for x in items if x["trigger"] == "on_demand"] == [made["id"]]
    events = await announced(metrics, broker, cid)
    ours = [(e.data["report_id"], e.data["trigger"]) for e in events]
    assert [o for o in ours if o[1] == "on_demand"] == [(made["id"], "on_demand")]
    r = await metrics.client.get(
        f"/communities/{cid}/analysis",
        params={"period": "week", "start": "2026-03-02"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    live = r.json()
    assert live["trend"]["contributions"]["slope"] == 1.0
    assert live["totals"]["new_members"]["current"] == 9.0
    for path, method in (
        (f"/communities/{cid}/reports", "POST"),
        (f"/communities/{cid}/analysis", "GET"),
    ):
        r = await metrics.client.request(
            method, path, json={"period": "week"}, headers=identities.headers(members[0])
        )
        assert r.status_code == 403 and r.headers["content-type"] == PROBLEM, (path, r.text)
    r = await metrics.client.post(
        f"/communities/{cid}/reports", json={"period": "fortnight"}, headers=headers
    )
    assert r.status_code == 422


async def test_reports_of_a_small_internal_community_hide_people_counts(
    metrics: RunningService, identities: Identities
) -> None:
    cid, owner, _ = await community(metrics, kind="internal", members=3)
    rt = metrics.runtime
    for i in range(3):
        await funnel.handle(rt.db, rt.tables, joined(cid, uuid.uuid4(), WEEK + i * D))
    r = await metrics.client.get(
        f"/communities/{cid}/analysis",
        params={"period": "week", "start": "2026-03-02"},
        headers=identities.headers(owner),
    )
    doc = r.json()
    assert doc["totals"]["new_members"]["current"] is None
    assert doc["totals"]["new_members"]["suppressed"]
    assert all(row["new_members"] is None for row in doc["series"])
