"""The funnel: milestone rows maintained from events match a brute force over the same events."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from metrics_testkit import PROBLEM, applied, commented, community, joined, published, redeemed

from hearth_metrics.funnels.consumers import funnel
from hearth_metrics.funnels.models import FunnelCell
from hearth_metrics.funnels.service import core_time, rebuild_cells
from servicekit.events import Envelope
from servicekit.testing.harness import Identities, RunningService
from servicekit.testing.membership import redelivered

T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
CORE_N, WINDOW = 10, timedelta(days=28)


def generate(cid: uuid.UUID, seed: int) -> tuple[list[Envelope], list[dict[str, Any]]]:
    """Events of ~120 people over 70 days (a few heavy posters, many lurkers), and the facts
    the brute force reads (kind, user, time)."""
    rng = random.Random(seed)
    envelopes: list[Envelope] = []
    facts: list[dict[str, Any]] = []
    post_ids: list[uuid.UUID] = []
    for _ in range(120):
        user = uuid.uuid4()
        first = T0 + timedelta(minutes=rng.randrange(0, 60 * 24 * 60))
        how = rng.random()
        if how < 0.3:
            envelopes.append(applied(cid, user, first))
            facts.append({"kind": "visit", "user": user, "at": first})
        elif how < 0.5:
            envelopes.append(redeemed(cid, user, first))
            facts.append({"kind": "visit", "user": user, "at": first})
        if how < 0.25 or how > 0.85:
            continue  # a visitor who never joins
        join = first + timedelta(hours=rng.randrange(0, 72))
        envelopes.append(joined(cid, user, join, rng.choice(["link", "qr", None])))
        facts.append({"kind": "join", "user": user, "at": join})
        heavy = rng.random() < 0.15
        n = rng.randrange(12, 40) if heavy else rng.choice([0, 0, 0, 1, 2, 3])
        for _ in range(n):
            at = join + timedelta(hours=rng.randrange(1, 24 * (20 if heavy else 60)))
            if post_ids and rng.random() < 0.5:
                envelopes.append(commented(cid, rng.choice(post_ids), user, at))
            else:
                post = uuid.uuid4()
                post_ids.append(post)
                envelopes.append(published(cid, user, at, post_id=post))
            facts.append({"kind": "contribution", "user": user, "at": at})
    return envelopes, facts


def brute_force(facts: list[dict[str, Any]], since: datetime, until: datetime) -> list[int]:
    """[visitors, members, contributors, core] straight from the facts."""
    people: dict[uuid.UUID, dict[str, Any]] = {}
    for f in facts:
        p = people.setdefault(f["user"], {"visit": [], "join": [], "contribution": []})
        p[f["kind"]].append(f["at"])
    counts = [0, 0, 0, 0]
    for p in people.values():
        visited = min(p["visit"] + p["join"])
        if not since <= visited < until:
            continue
        counts[0] += 1
        if not p["join"] or min(p["join"]) >= until:
            continue
        counts[1] += 1
        times = sorted(p["contribution"])
        if not times or times[0] >= until:
            continue
        counts[2] += 1
        core = None
        for i in range(len(times)):
            inside = [t for t in times if times[i] - WINDOW < t <= times[i]]
            if len(inside) >= CORE_N:
                core = times[i]
                break
        if core is not None and core < until:
            counts[3] += 1
    return counts


@pytest.mark.parametrize("zone", ["UTC", "Asia/Shanghai"])
async def test_funnel_matches_a_brute_force_over_the_same_events(
    metrics: RunningService, identities: Identities, zone: str
) -> None:
    rt = metrics.runtime
    cid, owner, _ = await community(metrics)
    r = await metrics.client.patch(
        f"/communities/{cid}/policy", json={"time_zone": zone}, headers=identities.headers(owner)
    )
    assert r.status_code == 200, r.text
    tz = ZoneInfo(zone)
    envelopes, facts = generate(cid, seed=14)
    # Any order, a good share delivered twice (a replayed stream), eight handlers at a time
    # (replicas sharing the durable): the same rows and cells.
    rng = random.Random(7)
    rng.shuffle(envelopes)
    again = [redelivered(e) for e in rng.sample(envelopes, len(envelopes) // 5)]
    todo = envelopes + again
    for i in range(0, len(todo), 8):
        await asyncio.gather(*(funnel.handle(rt.db, rt.tables, e) for e in todo[i : i + 8]))
    ranges = [
        (date(2026, 3, 2), date(2026, 5, 31)),
        (date(2026, 3, 2), date(2026, 3, 29)),
        (date(2026, 3, 16), date(2026, 4, 12)),
        (date(2026, 4, 20), date(2026, 4, 26)),
    ]
    checked_core = 0
    for start, end in ranges:
        r = await metrics.client.get(
            f"/communities/{cid}/funnel",
            params={"start": start.isoformat(), "end": end.isoformat()},
            headers=identities.headers(owner),
        )
        assert r.status_code == 200, r.text
        body = r.json()
        since = datetime.combine(start, time(), tz)
        until = datetime.combine(end + timedelta(days=1), time(), tz)
        want = brute_force(facts, since, until)
        got = [s["count"] for s in body["stages"]]
        assert got == want, (start, end, got, want)
        assert [s["stage"] for s in body["stages"]] == ["visitor", "member", "contributor", "core"]
        for i in (1, 2, 3):
            rate = body["stages"][i]["rate_from_previous"]
            assert rate == (round(want[i] / want[i - 1], 6) if want[i - 1] else None)
        checked_core += want[3]
    assert checked_core > 0  # the generated data has core members to count
    # Rebuilding the cells from the milestone rows gives the same cells.
    from sqlmodel import select

    async def all_cells() -> list[tuple]:
        async with rt.db.session() as s:
            rows = await s.exec(select(FunnelCell).where(FunnelCell.community_id == cid))
            return sorted(
                (c.visit_day, c.stage, c.reach_day, c.people) for c in rows.all() if c.people
            )

    incremental = await all_cells()
    async with rt.db.session() as s:
        assert await rebuild_cells(s, community_id=cid, zone=tz) > 0
        await s.commit()
    assert await all_cells() == incremental
    assert brute_force(facts, T0, T0 + timedelta(days=100))[0] > 50


def test_core_time_is_the_first_full_window() -> None:
    day = timedelta(days=1)
    times = [T0 + i * day for i in (0, 1, 40, 41, 42)]
    assert core_time(times, threshold=3, window=4 * day) == T0 + 42 * day
    assert core_time(times, threshold=2, window=4 * day) == T0 + 1 * day
    # Exactly one window apart is outside the window.
    assert core_time([T0, T0 + 4 * day], threshold=2, window=4 * day) is None


async def test_funnel_of_an_internal_community_with_three_people_is_suppressed(
    metrics: RunningService, identities: Identities
) -> None:
    rt = metrics.runtime
    cid, owner, people = await community(metrics, kind="internal", members=3)
    for user in people:
        await funnel.handle(rt.db, rt.tables, joined(cid, user, T0 + timedelta(days=1)))
    params = {"start": "2026-03-02", "end": "2026-03-08"}
    r = await metrics.client.get(
        f"/communities/{cid}/funnel", params=params, headers=identities.headers(owner)
    )
    assert r.status_code == 200, r.text
    stages = r.json()["stages"]
    assert all(s["count"] is None and s["suppressed"] for s in stages), stages
    assert all(s["rate_from_previous"] is None for s in stages)
    # A plain member is refused (the community publishes no funnel), a stranger learns nothing.
    r = await metrics.client.get(
        f"/communities/{cid}/funnel", params=params, headers=identities.headers(people[0])
    )
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    r = await metrics.client.get(
        f"/communities/{cid}/funnel", params=params, headers=identities.headers(uuid.uuid4())
    )
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    r = await metrics.client.get(
        f"/communities/{cid}/funnel",
        params={"start": "2026-03-09", "end": "2026-03-01"},
        headers=identities.headers(owner),
    )
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
