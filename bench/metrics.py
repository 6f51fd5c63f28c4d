"""Metrics on PostgreSQL: incremental ingest, rebuild, and dashboard reads over generated activity.

BENCH_METRICS_EVENTS events (default 5,000,000) from BENCH_METRICS_MEMBERS members (200,000)
over BENCH_METRICS_DAYS days (180), made by bench/metrics_data.py (a few heavy posters, many
lurkers, weekly seasonality; four communities in four time zones).

1. Incremental ingest: the events, in time order, through the batching consumer's transaction
   (`metrics__activity`: inbox rows + rollups + bitmaps in one commit per batch of 1,000), the
   exact code the pull loop runs per fetched batch. Events/s excludes generating them.
2. Rebuild: the first BENCH_METRICS_REBUILD events (default 300,000) are published to a real
   JetStream stream, ingested, then rebuilt from the stream into shadow tables and swapped in:
   events/s of the whole rebuild (stream read, inbox check, apply, swap).
3. Dashboard reads on the busiest community: the DAU/WAU/MAU (rolling) series over 90 days and
   the 12-week D1/D7/D30 cohort matrix, p50/p95 over BENCH_METRICS_READS runs (default 60),
   straight from the rollups (never the raw events).
Targets (issue 14): ingest >= 5,000 events/s, rebuild >= 20,000 events/s, reads p95 <= 50 ms.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import metrics_data  # noqa: E402

from hearth_metrics.activity import measures  # noqa: E402
from hearth_metrics.activity.consumers import activity  # noqa: E402
from hearth_metrics.activity.models import CommunityDay  # noqa: E402
from hearth_metrics.activity.rebuild import rebuild  # noqa: E402
from hearth_metrics.app import definition  # noqa: E402
from hearth_metrics.communities.models import CommunityPolicy  # noqa: E402
from servicekit.migrations import upgrade_async  # noqa: E402
from servicekit.runtime import ServiceRuntime  # noqa: E402

EVENTS = int(os.environ.get("BENCH_METRICS_EVENTS", "5000000"))
MEMBERS = int(os.environ.get("BENCH_METRICS_MEMBERS", "200000"))
DAYS = int(os.environ.get("BENCH_METRICS_DAYS", "180"))
REBUILD = int(os.environ.get("BENCH_METRICS_REBUILD", "300000"))
READS = int(os.environ.get("BENCH_METRICS_READS", "60"))
BATCH = activity.batch  # the consumer's fetch batch
TICK = os.sysconf("SC_CLK_TCK")


async def _server_cpu(rt: ServiceRuntime) -> float:
    """CPU seconds of this database's PostgreSQL backends so far (same host: /proc)."""
    async with rt.db.session() as session:
        pids = (
            await session.execute(
                sa.text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            )
        ).scalars()
        return sum(_proc_cpu(pid) for pid in pids)


def _proc_cpu(pid: int) -> float:
    """utime + stime of a process, in seconds (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def _runtime(url: str, nats_url: str = "", prefix: str = "bench") -> ServiceRuntime:
    settings = definition.settings_cls(
        environment="test",
        database_url=url,
        nats_url=nats_url or "nats://127.0.0.1:4222",
        subject_prefix=prefix,
        log_level="WARNING",
    )
    return ServiceRuntime(definition, settings)


async def _zones(rt: ServiceRuntime, spec: metrics_data.Spec) -> None:
    async with rt.db.session() as session:
        for c, zone in zip(spec.ids(), spec.zones, strict=False):
            session.add(CommunityPolicy(community_id=c, time_zone=zone))
        await session.commit()


async def ingest(url: str) -> dict[str, Any]:
    """Incremental ingest of the whole generated set; events/s and the generator's share."""
    await upgrade_async(definition.migrations_dir, url)
    rt = _runtime(url)
    spec = metrics_data.Spec(members=MEMBERS, days=DAYS, events=EVENTS)
    await _zones(rt, spec)
    busy = 0.0
    cpu = 0.0
    n = 0
    batch: list[Any] = []
    t0 = time.perf_counter()
    for g in metrics_data.generate(spec):
        batch.append(metrics_data.envelope(g))
        if len(batch) == BATCH:
            t, c = time.perf_counter(), time.process_time()
            await activity.handle_batch(rt.db, rt.tables, batch)
            busy += time.perf_counter() - t
            cpu += time.process_time() - c
            n += len(batch)
            batch = []
            if n % 500_000 == 0:
                print(f"  ... {n:,} events ingested, {n / busy:,.0f}/s", flush=True)
    if batch:
        t = time.perf_counter()
        await activity.handle_batch(rt.db, rt.tables, batch)
        busy += time.perf_counter() - t
        n += len(batch)
    wall = time.perf_counter() - t0
    server = await _server_cpu(rt)
    figures = {
        "events": n,
        "ingest_per_s": round(n / busy),
        "wall_s": round(wall, 1),
        # What the same work costs in CPU (ingest process + its PostgreSQL backends): the rate
        # one process would reach on an idle machine, where nothing else takes the cores.
        "ingest_cpu_per_s": round(n / (cpu + server)) if cpu + server else 0,
        "load": round(os.getloadavg()[0], 1),
    }
    figures |= await reads(rt, spec)
    await rt.db.dispose()
    return figures


async def reads(rt: ServiceRuntime, spec: metrics_data.Spec) -> dict[str, Any]:
    """p50/p95 of the 90-day active series and the 12-week cohort matrix (busiest community)."""
    table = CommunityDay.__table__  # type: ignore[attr-defined]
    async with rt.db.session() as session:
        busiest = (
            await session.execute(
                sa.select(table.c.community_id)
                .group_by(table.c.community_id)
                .order_by(sa.func.sum(table.c.active).desc())
                .limit(1)
            )
        ).scalar_one()
    last = (spec.start + timedelta(days=spec.days - 1)).date()
    series_ms, cohort_ms = [], []
    dau = 0
    for _ in range(READS):
        async with rt.db.session() as session:
            t = time.perf_counter()
            series = await measures.active_series(
                session, community_id=busiest, start=last - timedelta(days=89), end=last
            )
            series_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            await measures.retention(
                session,
                community_id=busiest,
                start=last - timedelta(weeks=12) - timedelta(days=40),
                end=last - timedelta(days=40),
                today=last,
                grain="week",
                days=(1, 7, 30),
            )
            cohort_ms.append((time.perf_counter() - t) * 1000)
            dau = max(a.dau for a in series)

    def p(values: list[float], q: int) -> float:
        return round(statistics.quantiles(values, n=100)[q - 1], 1)

    return {
        "peak_dau": dau,
        "series_p50_ms": p(series_ms, 50),
        "series_p95_ms": p(series_ms, 95),
        "cohorts_p50_ms": p(cohort_ms, 50),
        "cohorts_p95_ms": p(cohort_ms, 95),
    }


async def rebuild_bench(url: str, nats_url: str) -> dict[str, Any]:
    """Publish REBUILD events to JetStream, ingest them, then time a rebuild from the stream."""
    import nats

    from servicekit.events import nats_subject, stream_name
    from servicekit.messaging import ensure_stream, stream_config

    await upgrade_async(definition.migrations_dir, url)
    prefix = "bm" + uuid.uuid4().hex[:8]
    rt = _runtime(url, nats_url, prefix)
    spec = metrics_data.Spec(members=MEMBERS // 10, days=DAYS, events=REBUILD, seed=21)
    await _zones(rt, spec)
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    try:
        for context in ("members", "content", "events", "moderation"):
            await ensure_stream(js, stream_config(prefix, context, max_age_days=1, replicas=1))
        batch: list[Any] = []
        pending: list[Any] = []
        for g in metrics_data.generate(spec):
            e = metrics_data.envelope(g)
            batch.append(e)
            subject = nats_subject(prefix, e.type)
            pending.append(js.publish(subject, e.body(), headers=e.headers()))
            if len(pending) >= 1000:
                await asyncio.gather(*pending)
                pending = []
            if len(batch) == BATCH:
                await activity.handle_batch(rt.db, rt.tables, batch)
                batch = []
        await asyncio.gather(*pending)
        if batch:
            await activity.handle_batch(rt.db, rt.tables, batch)
        before = await _server_cpu(rt)
        t, c = time.perf_counter(), time.process_time()
        result = await rebuild(rt.db, rt.tables, js, prefix=prefix, default_zone="UTC")
        took = time.perf_counter() - t
        cpu = time.process_time() - c + await _server_cpu(rt) - before
        for context in ("members", "content", "events", "moderation"):
            await js.delete_stream(stream_name(prefix, context))
    finally:
        await nc.close()
        await rt.db.dispose()
    return {
        "rebuild_events": result.applied,
        "rebuild_per_s": round(result.applied / took),
        "rebuild_s": round(took, 1),
        "rebuild_cpu_per_s": round(result.applied / cpu) if cpu > 0 else 0,
    }


def verdict(ok: bool, what: str) -> str:
    """The verdict line beside a figure."""
    return f"[{'met' if ok else 'MISSED'}: {what}]"


def main(pg_url: str, nats_url: str | None, make_url: Any) -> None:
    """Run the three parts and print the figures (make_url: a fresh PostgreSQL database)."""
    print(f"\nmetrics: {EVENTS:,} events, {MEMBERS:,} members, {DAYS} days")
    figures = asyncio.run(ingest(pg_url))
    print(
        f"  incremental ingest: {figures['ingest_per_s']:,} events/s "
        f"({figures['events']:,} events, {figures['wall_s']} s with generation) "
        + verdict(figures["ingest_per_s"] >= 5000, ">= 5,000/s")
    )
    print(
        f"    CPU cost: {figures['ingest_cpu_per_s']:,} events per CPU-second (ingest process + "
        f"its PostgreSQL backends), load average {figures['load']} on {os.cpu_count()} cores"
    )
    print(
        f"  DAU/WAU/MAU 90-day series: p50 {figures['series_p50_ms']} ms, "
        f"p95 {figures['series_p95_ms']} ms (peak DAU {figures['peak_dau']:,}) "
        + verdict(figures["series_p95_ms"] <= 50, "p95 <= 50 ms")
    )
    print(
        f"  12-week D1/D7/D30 cohort matrix: p50 {figures['cohorts_p50_ms']} ms, "
        f"p95 {figures['cohorts_p95_ms']} ms "
        + verdict(figures["cohorts_p95_ms"] <= 50, "p95 <= 50 ms")
    )
    if nats_url:
        r = asyncio.run(rebuild_bench(make_url(), nats_url))
        print(
            f"  rebuild from the streams: {r['rebuild_per_s']:,} events/s "
            f"({r['rebuild_events']:,} events in {r['rebuild_s']} s) "
            + verdict(r["rebuild_per_s"] >= 20000, ">= 20,000/s")
        )
        print(f"    CPU cost: {r['rebuild_cpu_per_s']:,} events per CPU-second")


if __name__ == "__main__":
    from servicekit.testing.backends import resolve_backends

    backends = resolve_backends()
    try:
        main(
            backends.database_url("benchmetrics", "postgres"),
            backends.nats_url,
            lambda: backends.database_url("benchrebuild", "postgres"),
        )
    finally:
        backends.close()
