"""Funnel p95 on generated data (issue 14: <= 50 ms at 5,000,000 events / 200,000 members).

The events come from bench/metrics_data.py (metrics-core's generator: Zipf-like activity,
weekly seasonality, joins over 180 days). The milestone rows and funnel cells they lead to
are computed here with the service's own `core_time` and `cells` and copied into PostgreSQL;
the incremental path (one fact at a time, any order, duplicates, concurrent handlers) is
proven equal to a brute force in
services/metrics/tests/test_metrics_funnels.py, so the bench times only what a dashboard
request does: `funnels.service.funnel` over `funnel_cells`, never raw events.

Standalone: `python bench/metrics_funnel.py` (BENCH_FUNNEL_EVENTS, BENCH_FUNNEL_MEMBERS).
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from metrics_data import JOINED, Spec, generate  # noqa: E402

from hearth_metrics.funnels.models import MemberMilestone  # noqa: E402
from hearth_metrics.funnels.service import cells, core_time, funnel  # noqa: E402
from servicekit.migrations import upgrade_async  # noqa: E402

MIGRATIONS = HERE.parent / "services/metrics/src/hearth_metrics/migrations"
EVENTS = int(os.environ.get("BENCH_FUNNEL_EVENTS", "5000000"))
MEMBERS = int(os.environ.get("BENCH_FUNNEL_MEMBERS", "200000"))
QUERIES = int(os.environ.get("BENCH_FUNNEL_QUERIES", "200"))
CONTRIBUTIONS = {"hearth.content.comment.created.v1", "hearth.content.post.published.v1"}
CORE_N, WINDOW = 10, timedelta(days=28)
UTC_ZONE = ZoneInfo("UTC")


def _percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def run(url: str) -> dict[str, float | int]:
    """Generate, load the milestone rows into the empty database at `url`, time funnels."""
    from servicekit.db import async_url

    await upgrade_async(MIGRATIONS, url)
    spec = Spec(members=MEMBERS, events=EVENTS)
    t0 = time.perf_counter()
    joins: dict[tuple, tuple] = {}
    posts: dict[tuple, list] = {}
    n = 0
    for g in generate(spec):
        n += 1
        key = (g.community_id, g.user_id)
        if g.type == JOINED:
            if key not in joins or g.at < joins[key][0]:
                joins[key] = (g.at, g.channel)
        elif g.type in CONTRIBUTIONS:
            posts.setdefault(key, []).append(g.at)
    generated = time.perf_counter() - t0
    rows = []
    counts: dict[tuple, int] = {}
    for key, (at, channel) in joins.items():
        times = sorted(posts.get(key, []))
        core = core_time(times, threshold=CORE_N, window=WINDOW)
        first = times[0] if times else None
        rows.append((key[0], key[1], at, at, channel, first, core))
        row = MemberMilestone(
            community_id=key[0],
            user_id=key[1],
            visited_at=at,
            joined_at=at,
            contributed_at=first,
            core_at=core,
        )
        for cell in cells(row, UTC_ZONE):
            counts[(key[0], *cell)] = counts.get((key[0], *cell), 0) + 1
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.copy_records_to_table(
            "member_milestones",
            records=rows,
            columns=[
                "community_id",
                "user_id",
                "visited_at",
                "joined_at",
                "join_channel",
                "contributed_at",
                "core_at",
            ],
        )
        await conn.copy_records_to_table(
            "funnel_cells",
            records=[(*cell, n) for cell, n in counts.items()],
            columns=["community_id", "visit_day", "stage", "reach_day", "people"],
        )
        await conn.execute("VACUUM ANALYZE member_milestones")
        await conn.execute("VACUUM ANALYZE funnel_cells")
    finally:
        await conn.close()
    sizes: dict = {}
    for cid, *_ in rows:
        sizes[cid] = sizes.get(cid, 0) + 1
    biggest = max(sizes, key=lambda c: sizes[c])
    rng = random.Random(3)
    engine = create_async_engine(async_url(url))
    timings: list[float] = []
    try:
        async with AsyncSession(engine) as session:
            for i in range(QUERIES + 10):
                days = rng.choice([7, 28, 90, 180])
                start = spec.start + timedelta(days=rng.randint(0, max(0, spec.days - days)))
                end = start + timedelta(days=days)
                t = time.perf_counter()
                got = await funnel(
                    session,
                    community_id=biggest,
                    start_day=start.date(),
                    end_day=end.date(),
                    since=start,
                    until=end,
                    threshold=CORE_N,
                    window_days=28,
                    floor=lambda p: (p, None),
                )
                if i >= 10:  # the first ten warm the connection and the plan cache
                    timings.append((time.perf_counter() - t) * 1000)
                assert got.stages[0].count is not None
    finally:
        await engine.dispose()
    return {
        "events": n,
        "members": MEMBERS,
        "milestone_rows": len(rows),
        "biggest_community_rows": sizes[biggest],
        "cells": len(counts),
        "generate_s": round(generated, 1),
        "funnel_p50_ms": round(_percentile(timings, 0.5), 2),
        "funnel_p95_ms": round(_percentile(timings, 0.95), 2),
    }


def main() -> None:
    """Run against a fresh PostgreSQL database of the local backends."""
    from servicekit.testing.backends import resolve_backends

    backends = resolve_backends()
    try:
        if backends.postgres_admin_url is None:
            print("metrics funnel: skipped (needs PostgreSQL)")
            return
        figures = asyncio.run(run(backends.database_url("benchfunnel", "postgres")))
    finally:
        backends.close()
    report(figures)


def report(figures: dict[str, float | int]) -> None:
    """Print the figures with the target's verdict."""
    ok = figures["funnel_p95_ms"] <= 50
    print(
        f"metrics funnel over {figures['events']:,} events / {figures['members']:,} members "
        f"({figures['milestone_rows']:,} milestone rows, {figures['cells']:,} funnel cells, "
        f"biggest community {figures['biggest_community_rows']:,} people; generated in "
        f"{figures['generate_s']} s):"
    )
    print(
        f"  funnel p50 {figures['funnel_p50_ms']} ms, p95 {figures['funnel_p95_ms']} ms "
        + ("[met]" if ok else "[MISSED]")
        + " p95 <= 50 ms"
    )


if __name__ == "__main__":
    main()
