"""Activity ingest and measures against a brute-force computation over the same generated events.

The events come from bench/metrics_data.py (the benchmark's generator, at small scale), checked
against the producers' own event models. Brute force: plain Python sets per local day.
"""

from __future__ import annotations

import asyncio
import random
import sys
import uuid
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pyroaring import BitMap

from hearth_metrics.activity import measures
from hearth_metrics.activity.consumers import activity
from hearth_metrics.activity.facts import ACTIVITY, NO_CHANNEL
from hearth_metrics.activity.models import REBUILT
from hearth_metrics.activity.rebuild import rebuild
from hearth_metrics.app import definition as metrics_definition
from hearth_metrics.communities.models import CommunityPolicy
from servicekit.events import Envelope
from servicekit.testing.contracts import producer_payload
from servicekit.testing.harness import Identities, RunningService, eventually

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
import metrics_data

ZONES = ("UTC", "Asia/Shanghai")


def small(seed: int = 3, **overrides: Any) -> metrics_data.Spec:
    """A small generated community pair (one in Shanghai's time zone)."""
    values: dict[str, Any] = {
        "members": 240,
        "days": 50,
        "events": 5000,
        "communities": 2,
        "seed": seed,
    }
    return metrics_data.Spec(**(values | overrides))


class Brute:
    """DAU/WAU/MAU and Dn retention by brute force over generated events."""

    def __init__(self, events: list[metrics_data.Generated], zones: dict[uuid.UUID, str]) -> None:
        self.active: dict[uuid.UUID, dict[date, set[uuid.UUID]]] = defaultdict(
            lambda: defaultdict(set)
        )
        self.counts: dict[uuid.UUID, dict[date, dict[str, int]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(int))
        )
        self.joined: dict[uuid.UUID, dict[uuid.UUID, tuple[date, str]]] = defaultdict(dict)
        first: dict[tuple[uuid.UUID, uuid.UUID], Any] = {}
        for g in events:
            day = g.at.astimezone(ZoneInfo(zones[g.community_id])).date()
            if g.type == metrics_data.JOINED:
                key = (g.community_id, g.user_id)
                if key not in first or g.at < first[key][0]:
                    first[key] = (g.at, day, g.channel or NO_CHANNEL)
                continue
            kind = ACTIVITY[g.type][0]
            self.active[g.community_id][day].add(g.user_id)
            self.counts[g.community_id][day][kind] += 1
        for (c, u), (_, day, channel) in first.items():
            self.joined[c][u] = (day, channel)

    def window(self, c: uuid.UUID, day: date, n: int) -> int:
        """Distinct members active in the n days ending on `day`."""
        found: set[uuid.UUID] = set()
        for i in range(n):
            found |= self.active[c].get(day - timedelta(days=i), set())
        return len(found)

    def retention(
        self, c: uuid.UUID, grain: str, ns: list[int], today: date, by_channel: bool
    ) -> dict[tuple[date, str | None], tuple[int, dict[int, int | None]]]:
        """{(bucket, channel): (size, {n: retained or None})}."""
        cells: dict[tuple[date, str | None], list[Any]] = {}
        for user, (day, channel) in self.joined[c].items():
            bucket = measures.bucket_of(day, grain)  # type: ignore[arg-type]
            key = (bucket, channel if by_channel else None)
            cell = cells.setdefault(key, [0, dict.fromkeys(ns, 0)])
            cell[0] += 1
            for n in ns:
                if user in self.active[c].get(day + timedelta(days=n), set()):
                    cell[1][n] += 1
        out = {}
        for (bucket, channel), (size, kept) in cells.items():
            last = measures.aligned(bucket, bucket, grain=grain)[1]  # type: ignore[arg-type]
            out[(bucket, channel)] = (
                size,
                {n: (kept[n] if last + timedelta(days=n) <= today else None) for n in ns},
            )
        return out


async def set_zones(metrics: RunningService, communities: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Give the communities their time zones (before ingest: days are filed locally)."""
    zones = dict(zip(communities, ZONES, strict=False))
    async with metrics.runtime.db.session() as session:
        for c, zone in zones.items():
            session.add(CommunityPolicy(community_id=c, time_zone=zone))
        await session.commit()
    return zones


async def ingest(metrics: RunningService, envelopes: list[Envelope], size: int = 300) -> int:
    """Hand the envelopes to the batching consumer as its pull loop would; how many were new."""
    rt = metrics.runtime
    applied = 0
    for i in range(0, len(envelopes), size):
        applied += await activity.handle_batch(rt.db, rt.tables, envelopes[i : i + size])
    return applied


async def check_against_brute_force(
    metrics: RunningService, spec: metrics_data.Spec, brute: Brute
) -> None:
    """Every measure of every community equals the brute-force figure."""
    first_day = spec.start.date() - timedelta(days=1)
    last_day = first_day + timedelta(days=spec.days + 1)
    kept = 0
    async with metrics.runtime.db.session() as session:
        for c in spec.ids():
            days = await measures.daily_activity(
                session, community_id=c, start=first_day, end=last_day
            )
            for d in days:
                assert d.active == len(brute.active[c].get(d.day, set())), (c, d.day)
                want = brute.counts[c].get(d.day, {})
                assert {k: v for k, v in d.counts.items() if v} == dict(want), (c, d.day)
            for window in ("rolling",):
                series = await measures.active_series(
                    session, community_id=c, start=first_day, end=last_day, window=window
                )
                for a in series:
                    assert (a.dau, a.wau, a.mau) == (
                        brute.window(c, a.day, 1),
                        brute.window(c, a.day, 7),
                        brute.window(c, a.day, 30),
                    ), (c, a.day)
            for grain in ("day", "week", "month"):
                for by_channel in (False, True):
                    for today in (last_day + timedelta(days=40), first_day + timedelta(days=20)):
                        ns = [1, 7, 30, 3]
                        got = await measures.retention(
                            session,
                            community_id=c,
                            start=first_day,
                            end=last_day,
                            today=today,
                            grain=grain,  # type: ignore[arg-type]
                            days=ns,
                            by_channel=by_channel,
                        )
                        want = brute.retention(c, grain, ns, today, by_channel)
                        have = {(r.cohort, r.channel): (r.size, r.retained) for r in got if r.size}
                        assert have == want, (c, grain, by_channel, today)
                        kept += sum(v or 0 for _, r in want.values() for v in r.values())
    # The comparison rests on real figures: people were retained, days had many members.
    assert kept > 0
    assert max(len(s) for per_day in brute.active.values() for s in per_day.values()) >= 10


async def test_ingest_matches_brute_force_and_counts_a_redelivery_once(
    metrics: RunningService,
) -> None:
    spec = small()
    events = list(metrics_data.generate(spec))
    zones = await set_zones(metrics, spec.ids())
    # The generated payloads are the producers' own.
    for ce_type in {g.type for g in events}:
        sample = next(g for g in events if g.type == ce_type)
        producer_payload(ce_type, metrics_data.payload(sample))
    envelopes = [metrics_data.envelope(g) for g in events]
    # Out of order, as several streams and replicas deliver them.
    random.Random(5).shuffle(envelopes)
    assert await ingest(metrics, envelopes) == len(envelopes)
    # The same events again (a redelivery, a replay, in other batches): nothing counts twice.
    again = random.Random(6).sample(envelopes, 400)
    assert await ingest(metrics, again, size=97) == 0
    assert (
        await activity.handle_batch(metrics.runtime.db, metrics.runtime.tables, again[:5] * 2) == 0
    )
    await check_against_brute_force(metrics, spec, Brute(events, zones))


async def snapshot(metrics: RunningService) -> dict[str, Any]:
    """Every rebuilt table's rows, bitmaps as sets (their bytes may differ, the sets may not)."""
    out: dict[str, Any] = {}
    async with metrics.runtime.db.session() as session:
        for model in REBUILT:
            table = model.__table__  # type: ignore[attr-defined]
            rows = (await session.execute(sa.select(table))).mappings().all()
            items = []
            for row in rows:
                item = dict(row)
                if "members" in item:
                    item["members"] = sorted(BitMap.deserialize(item["members"]))
                items.append(tuple(sorted((k, str(v)) for k, v in item.items())))
            out[table.name] = sorted(items)
    return out


async def test_replicas_share_the_ingest_and_a_rebuild_gives_the_same_tables(
    any_database_url: str, launch: Any, broker: Any, nats_client: Any, subject_prefix: str
) -> None:
    spec = small(seed=11, members=150, events=2500, days=40)
    events = list(metrics_data.generate(spec))
    envelopes = [metrics_data.envelope(g) for g in events]
    first = await launch(metrics_definition, database_url=any_database_url)
    second = await launch(metrics_definition, database_url=any_database_url)
    zones = await set_zones(first, spec.ids())
    half = len(envelopes) // 2
    for e in envelopes[:half]:
        await broker.publish(e)
    # A copy of an event past JetStream's duplicate window: stored twice, counted once.
    await broker.publish(envelopes[0], msg_id=f"{envelopes[0].id}-again")

    def ingest_of(svc: RunningService) -> Any:
        return next(c for c in svc.runtime.consumers if c.consumer.name == activity.name)

    async def all_handled(n: int) -> bool:
        stats = [ingest_of(s).stats for s in (first, second)]
        return sum(s["handled"] for s in stats) >= n

    await eventually(lambda: all_handled(half), timeout=60)
    # Both replicas pulled from the shared durables.
    assert all(ingest_of(s).stats["handled"] > 0 for s in (first, second))
    # Rebuild while the ingest goes on: the rest of the events arrive during it.
    rest = asyncio.create_task(_publish_all(broker, envelopes[half:]))
    result = await rebuild(
        first.runtime.db,
        first.runtime.tables,
        nats_client.jetstream(),
        prefix=subject_prefix,
        default_zone="UTC",
    )
    assert result.swapped and result.applied >= half
    await rest
    await eventually(lambda: all_handled(len(envelopes)), timeout=60)
    brute = Brute(events, zones)
    await check_against_brute_force(first, spec, brute)
    incremental = await snapshot(first)
    # And a rebuild now, with nothing in flight, gives exactly the tables the ingest built.
    again = await rebuild(
        first.runtime.db,
        first.runtime.tables,
        nats_client.jetstream(),
        prefix=subject_prefix,
        default_zone="UTC",
    )
    assert again.applied == len(envelopes)
    assert await snapshot(first) == incremental
    # Reads go on against the swapped tables.
    await check_against_brute_force(second, spec, brute)


async def _publish_all(broker: Any, envelopes: list[Envelope]) -> None:
    for e in envelopes:
        await broker.publish(e)


async def test_measures_over_http_and_the_privacy_floor(
    metrics: RunningService, identities: Identities
) -> None:
    from hearth_metrics.communities.consumers import memberships
    from servicekit.testing.membership import Snapshots

    rt = metrics.runtime
    snaps = Snapshots()
    spec = small(seed=4, members=60, events=900, days=20, communities=1)
    [customer] = spec.ids()
    owner = uuid.uuid4()
    await memberships.handle(rt.db, rt.tables, snaps.community(customer, owner, kind="customer"))
    await memberships.handle(rt.db, rt.tables, snaps.membership(customer, owner, role="owner"))
    events = list(metrics_data.generate(spec))
    await ingest(metrics, [metrics_data.envelope(g) for g in events])
    brute = Brute(events, {customer: "UTC"})
    start = spec.start.date()
    end = start + timedelta(days=spec.days - 1)
    params = {"start": start.isoformat(), "end": end.isoformat()}
    h = identities.headers(owner)
    r = await metrics.client.get(
        f"/communities/{customer}/activity/active", params=params, headers=h
    )
    assert r.status_code == 200, r.text
    for row in r.json():
        day = date.fromisoformat(row["day"])
        assert row["dau"] == brute.window(customer, day, 1)
        assert row["mau"] == brute.window(customer, day, 30)
        want = row["dau"] / row["mau"] if row["mau"] else None
        assert row["stickiness"] == want and row["suppressed"] == {}
    r = await metrics.client.get(
        f"/communities/{customer}/retention",
        params=params | {"grain": "week", "days": [1, 7]},
        headers=h,
    )
    assert r.status_code == 200 and r.json(), r.text
    want = brute.retention(customer, "week", [1, 7], date.today(), False)
    for row in r.json():
        size, kept = want.get((date.fromisoformat(row["cohort"]), None), (0, {}))
        assert row["size"] == size
        if size:
            assert row["retained"] == {str(n): v for n, v in kept.items()}
    r = await metrics.client.get(
        f"/communities/{customer}/activity/daily", params=params, headers=h
    )
    assert sum(d["posts"] for d in r.json()) == sum(
        v.get("posts", 0) for v in brute.counts[customer].values()
    )
    r = await metrics.client.get(f"/communities/{customer}/leaderboard", params=params, headers=h)
    assert r.status_code == 200 and len(r.json()) == 10
    assert r.json()[0]["contributions"] >= r.json()[-1]["contributions"]
    r = await metrics.client.get(
        f"/communities/{customer}/activity/daily",
        params={"start": end.isoformat(), "end": start.isoformat()},
        headers=h,
    )
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"

    # An internal community of 3 members with k = 5: suppressed, never a small count.
    internal, boss = uuid.uuid4(), uuid.uuid4()
    people = [boss, uuid.uuid4(), uuid.uuid4()]
    await memberships.handle(rt.db, rt.tables, snaps.community(internal, boss, kind="internal"))
    await memberships.handle(rt.db, rt.tables, snaps.membership(internal, boss, role="owner"))
    tiny = [
        metrics_data.Generated(metrics_data.JOINED, internal, u, spec.start, "invite")
        for u in people
    ] + [
        metrics_data.Generated(
            "hearth.content.comment.created.v1", internal, u, spec.start + timedelta(days=1)
        )
        for u in people
    ]
    await ingest(metrics, [metrics_data.envelope(g) for g in tiny])
    h = identities.headers(boss)
    r = await metrics.client.get(
        f"/communities/{internal}/activity/active", params=params, headers=h
    )
    assert r.status_code == 200, r.text
    day2 = next(row for row in r.json() if row["day"] == (start + timedelta(days=1)).isoformat())
    assert day2["window"] == "calendar"
    assert (day2["dau"], day2["wau"], day2["mau"], day2["stickiness"]) == (None,) * 4
    assert day2["suppressed"]["dau"] == "fewer than 5 people"
    r = await metrics.client.get(
        f"/communities/{internal}/activity/daily", params=params, headers=h
    )
    assert all(row["active"] is None and row["comments"] is None for row in r.json())
    r = await metrics.client.get(f"/communities/{internal}/retention", params=params, headers=h)
    cohort = next(row for row in r.json() if row["suppressed"])
    assert cohort["size"] is None and set(cohort["retained"].values()) == {None}
    r = await metrics.client.get(f"/communities/{internal}/leaderboard", params=params, headers=h)
    assert r.status_code == 403 and r.json()["type"].endswith(":rankings-disabled")
    r = await metrics.client.patch(
        f"/communities/{internal}/policy", json={"rankings_enabled": True}, headers=h
    )
    assert r.status_code == 200
    r = await metrics.client.get(f"/communities/{internal}/leaderboard", params=params, headers=h)
    assert r.status_code == 200 and len(r.json()) == 3
