"""`make bench`: gateway overhead and event propagation latency, measured on this machine.

1. The same authenticated read (GET a community) sent through the gateway and directly to the
   members service, at 1, 8 and 64 connections, in one run: req/s, p50/p99, and the ratio.
2. Event propagation: HTTP write (a join) → the metrics consumer's committed effect, timed from
   the request start until metrics' counts endpoint shows the join, p50/p99 over sequential
   writes.
3. Moderation's matcher: items of 500 characters screened per second on one core, with 10,000
   watched words, 50 regexes and every advertising detector (issue 12: >= 20,000/s).
4. Content search and deep newest-first pages on PostgreSQL over a generated corpus
   (bench/content_search.py; BENCH_CORPUS posts, default 200,000).
5. Events registrations per second: 1,000 members racing for 100 seats from 100 connections
   on PostgreSQL (bench/registrations.py; issue 13: >= 500/s); alone: BENCH_ONLY=registrations.
6. Verdict latency: posts submitted through the gateway until content shows the applied
   screening verdict (published or held), p50/p99 (issue 12: p99 <= 150 ms).
7. The gateway's upstream transports (gateway/bench/transports.py), reported only.

Each bench keeps its own detailed lines and returns the figures of its rows; the runner
(bottom of this file) selects benches by BENCH, prints the one table (bench/table.py) and
merges it into bench/results.json. Rows issue 15 asks for that nothing measures yet are in the
table with value null and the reason.

    python bench/run.py [--only NAME[,NAME...]] [--list]    # make bench [BENCH=NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from servicekit.identity import AssertionSigner, Principal
from servicekit.testing.backends import Backends, resolve_backends
from servicekit.testing.platform import CONTEXTS, Platform

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from table import Measured, Spec, Target, build_row, git_commit, machine, render, write  # noqa: E402

Figures = dict[str, Measured]
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
JOINS = int(os.environ.get("BENCH_JOINS", "200"))


def _load_process(spec: dict) -> dict:
    """Run the load generator in its own process so it does not share the servers' event loops."""
    out = subprocess.run(
        [sys.executable, str(HERE / "load.py"), json.dumps(spec)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(out.stdout)


def load(url: str, headers: dict[str, str], concurrency: int) -> dict:
    """Closed-loop load on one URL at a concurrency: req/s, p50, p99, errors."""
    return _load_process(
        {
            "url": url,
            "headers": headers,
            "concurrency": concurrency,
            "seconds": SECONDS,
            "warmup": 1.0,
        }
    )


def alternating(first: tuple[str, dict[str, str]], second: tuple[str, dict[str, str]]) -> dict:
    """Two targets at one connection each, requests alternating: p50/p99 of both."""
    return _load_process(
        {"first": list(first), "second": list(second), "seconds": SECONDS, "warmup": 1.0}
    )


def fmt(r: dict) -> str:
    """One line of a load result; a run without a single successful sample says so."""
    if not r["requests"]:
        return f"no successful request (errors {r['errors']})"
    return (
        f"{r['rps']:8.0f} req/s  p50 {r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:6.2f} ms"
        f"  errors {r['errors']}"
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-quantile (0..1) of an ascending list, nearest rank."""
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


def verdict(ok: bool, what: str) -> str:
    """A target line: met or missed, with the figure behind it."""
    return f"  [{'met   ' if ok else 'MISSED'}] {what}"


def gateway_vs_direct(platform: Platform, signer: AssertionSigner) -> Figures:
    """Same authenticated GET through the gateway and directly, at 1, 8 and 64 connections."""
    with httpx.Client(base_url=platform.gateway) as gw:
        tok = gw.post(
            "/auth/token", json={"username": "operator", "password": "hearth-operator"}
        ).json()
        bearer = {"authorization": f"Bearer {tok['access_token']}"}
        community = gw.post(
            "/api/members/communities", headers=bearer, json={"name": "Bench", "kind": "internal"}
        ).json()["id"]
    operator = Principal(
        subject=uuid.UUID("00000000-0000-7000-8000-000000000001"), roles=frozenset({"operator"})
    )
    print("\n== Gateway vs direct: GET one community (authenticated) ==")
    results: dict[int, tuple[dict, dict]] = {}
    for concurrency in (1, 8, 64):
        direct_headers = {"x-hearth-identity": signer.sign(operator)}  # fresh: assertions live 60 s
        direct = load(
            f"{platform.service('members')}/communities/{community}", direct_headers, concurrency
        )
        gateway_pid = platform.procs["gateway"].pid
        cpu_before = cpu_seconds(gateway_pid)
        via = load(f"{platform.gateway}/api/members/communities/{community}", bearer, concurrency)
        # The gateway's own CPU per proxied request (warm-up included on both sides): flat
        # across levels means it does not get costlier per request as load grows.
        cpu_us = (cpu_seconds(gateway_pid) - cpu_before) / max(1, via["total"]) * 1e6
        results[concurrency] = (direct, via)
        print(f"c={concurrency:<3} direct  {fmt(direct)}")
        print(f"c={concurrency:<3} gateway {fmt(via)}  gateway CPU ~{cpu_us:4.0f} us/request")
        if direct["requests"] and via["requests"]:
            ratio = via["rps"] / direct["rps"]
            added = via["p50_ms"] - direct["p50_ms"]
            print(
                f"c={concurrency:<3} gateway/direct throughput {ratio:5.1%}"
                f"   p50 added {added:+.2f} ms"
            )
    # Added latency at one connection, measured the fairest way: direct and gateway requests
    # alternate, so both halves see the same moment's machine (the cells above run one after
    # the other, and on two shared cores the service's own p50 drifts between them).
    pair = alternating(
        (
            f"{platform.service('members')}/communities/{community}",
            {"x-hearth-identity": signer.sign(operator)},
        ),
        (f"{platform.gateway}/api/members/communities/{community}", bearer),
    )
    direct1, via1 = pair["first"], pair["second"]
    if direct1["requests"] and via1["requests"]:
        print(
            f"c=1 alternating: direct p50 {direct1['p50_ms']:.2f} ms, gateway p50"
            f" {via1['p50_ms']:.2f} ms ({direct1['requests']} + {via1['requests']} requests)"
        )
    figures: Figures = {}
    if direct1["requests"] and via1["requests"]:
        added = via1["p50_ms"] - direct1["p50_ms"]
        figures["gateway.added_p50"] = Measured(
            round(added, 3), f"c=1 alternating, {direct1['requests']} + {via1['requests']} req"
        )
    if not all(d["requests"] and v["requests"] for d, v in results.values()):
        print("targets: not judged (a level had no successful request)")
        return figures
    worst = min(v["rps"] / d["rps"] for d, v in results.values())
    level = min(results, key=lambda c: results[c][1]["rps"] / results[c][0]["rps"])
    figures["gateway.throughput_ratio"] = Measured(
        round(worst, 3), f"lowest of c=1/8/64 (at c={level})"
    )
    r8, r64 = results[8][1]["rps"], results[64][1]["rps"]
    figures["gateway.c64_vs_c8"] = Measured(
        round(r64 / r8, 3), f"no collapse: {r64:.0f} vs {r8:.0f} req/s (3% noise allowed)"
    )
    return figures


async def propagation(platform: Platform, signer: AssertionSigner) -> Figures:
    """HTTP join on members → the join counted in metrics' committed state, read back over HTTP.

    Joins are sequential; after each, metrics' counts endpoint is polled (every ~1 ms) until it
    shows the join, so a figure is the time until a reader sees the committed effect (an upper
    bound by one poll and one read).
    """
    operator = Principal(subject=uuid.uuid4(), roles=frozenset({"operator"}))
    staff = {"x-hearth-identity": signer.sign(operator)}
    latencies: list[float] = []
    timeouts = 0
    async with (
        httpx.AsyncClient(base_url=platform.service("members")) as members,
        httpx.AsyncClient(base_url=platform.service("metrics")) as metrics,
    ):
        r = await members.post(
            "/communities", json={"name": "Propagation", "kind": "internal"}, headers=staff
        )
        community = r.json()["id"]
        for i in range(1, JOINS + 1):
            if i % 50 == 0:
                staff = {"x-hearth-identity": signer.sign(operator)}  # assertions live 60 s
            user = Principal(subject=uuid.uuid4(), roles=frozenset({"member"}))
            headers = {"x-hearth-identity": signer.sign(user)}
            t0 = time.perf_counter()
            r = await members.post(f"/communities/{community}/members", headers=headers)
            assert r.status_code == 201, r.text
            deadline = t0 + 10
            while True:
                counts = await metrics.get(f"/communities/{community}/counts", headers=staff)
                if counts.status_code == 200 and counts.json().get("joins", 0) >= i:
                    latencies.append((time.perf_counter() - t0) * 1000)
                    break
                if time.perf_counter() > deadline:
                    timeouts += 1
                    break
                await asyncio.sleep(0.001)
    latencies.sort()
    n = len(latencies)
    print("\n== Event propagation: HTTP join → metrics' committed count, seen by a reader ==")
    if not n:
        print(f"no join was seen in metrics within 10 s ({timeouts} timed out)")
        return {}
    print(
        f"events {n}/{JOINS} (timed out {timeouts})  p50 {percentile(latencies, 0.5):.1f} ms"
        f"  p99 {percentile(latencies, 0.99):.1f} ms  max {latencies[-1]:.1f} ms"
    )
    note = f"{n}/{JOINS} joins seen, {timeouts} timed out"
    return {
        "propagation.p50": Measured(round(percentile(latencies, 0.5), 1), note, not timeouts),
        "propagation.p99": Measured(round(percentile(latencies, 0.99), 1), note, not timeouts),
    }


def matcher_throughput() -> Figures:
    """Items of 500 characters per second through moderation's matcher, on this one core."""
    import random

    from hearth_moderation.matcher import Matcher
    from hearth_moderation.normalize import _t2s
    from hearth_moderation.rules import RuleSetDraft

    rng = random.Random(12)
    traditional = sorted(_t2s())
    # Simplified text (characters that are not traditional forms), as most posts are.
    hanzi = [chr(c) for c in range(0x4E00, 0x4E00 + 6000) if chr(c) not in _t2s()][:3000]
    latin = "abcdefghijklmnopqrstuvwxyz"
    words: set[str] = set()
    while len(words) < 10_000:
        if rng.random() < 0.6:
            words.add("".join(rng.choices(hanzi, k=rng.randint(2, 4))))
        else:
            words.add("".join(rng.choices(latin, k=rng.randint(4, 9))))
    regexes = [f"{rng.choice(latin)}{rng.choice(latin)}[0-9]{{{i % 5 + 2}}}x" for i in range(50)]
    draft = RuleSetDraft.model_validate(
        {
            "words": [{"term": w, "action": "flag"} for w in sorted(words)],
            "regexes": [{"pattern": r, "action": "flag"} for r in regexes],
            "detectors": [
                {"detector": d, "action": "require_approval"}
                for d in ("link", "phone", "qq_wechat", "email", "evasion")
            ],
        }
    )
    matcher = Matcher(draft)
    # Items: 80% hanzi, the rest Latin, digits, spaces and full-width punctuation, and five
    # traditional characters each (1%), so normalization has real work on every item.
    alphabet = hanzi[:1500] * 3 + list(latin + latin.upper() + "     \uff0c\u3002\uff010123456789")
    items = []
    for _ in range(200):
        chars = rng.choices(alphabet, k=500)
        for i in rng.sample(range(500), 5):
            chars[i] = rng.choice(traditional)
        items.append("".join(chars))
    hits = 0
    start = time.perf_counter()
    n = 0
    while time.perf_counter() - start < SECONDS:
        for item in items:
            hits += len(matcher.screen(item).hits)
        n += 200
    rate = n / (time.perf_counter() - start)
    print("\nmoderation matcher: 10,000 words, 50 regexes, 5 detectors, 500-char items, 1 core")
    print(f"  {rate:,.0f} items/s ({hits / n:.1f} hits per item)")
    print(verdict(rate >= 20_000, f"matcher >= 20,000 items/s per core: {rate:,.0f}"))
    return {"screening.rate": Measured(round(rate), f"{hits / n:.1f} hits per item, 1 core")}


def content_search_bench(backends: object) -> Figures:
    """Search p95 <= 50 ms and deep-page p95 <= 20 ms (issue 11), on PostgreSQL."""
    import content_search

    if getattr(backends, "postgres_admin_url", None) is None:
        raise Skipped("needs PostgreSQL")
    figures = asyncio.run(content_search.run(backends.database_url("benchsearch", "postgres")))  # type: ignore[attr-defined]
    print(
        f"content search over {figures['corpus']} posts (generated in {figures['generate_s']} s):"
    )
    print(
        f"  search p50 {figures['search_p50_ms']} ms, p95 {figures['search_p95_ms']} ms "
        + verdict(figures["search_p95_ms"] <= 50, "p95 <= 50 ms")
    )
    print(
        f"  deep page p50 {figures['deep_page_p50_ms']} ms, p95 {figures['deep_page_p95_ms']} ms "
        + verdict(figures["deep_page_p95_ms"] <= 20, "p95 <= 20 ms")
    )
    note = f"{figures['corpus']:,} posts, PostgreSQL"
    return {
        "search.p95": Measured(figures["search_p95_ms"], note),
        "list.p95": Measured(figures["deep_page_p95_ms"], note + ", deep keyset pages"),
    }


VERDICTS = int(os.environ.get("BENCH_VERDICTS", "200"))


async def verdict_latency(platform: Platform) -> Figures:
    """A post submitted through the gateway → content shows moderation's verdict applied.

    Sequential posts by one member (every fifth one advertising, so it is held); after each,
    the post is read back through the gateway (every ~2 ms) until it leaves `pending_review`:
    the figure is submission start → a reader sees the verdict applied (published or held).
    """
    async with httpx.AsyncClient(base_url=platform.gateway, timeout=10) as gw:

        async def bearer(user: str) -> dict[str, str]:
            r = await gw.post("/auth/token", json={"username": user, "password": f"hearth-{user}"})
            r.raise_for_status()
            return {"authorization": f"Bearer {r.json()['access_token']}"}

        operator, member = await bearer("operator"), await bearer("member")
        r = await gw.post(
            "/api/members/communities",
            json={"name": "Verdicts", "kind": "internal"},
            headers=operator,
        )
        r.raise_for_status()
        community = r.json()["id"]
        (
            await gw.post(f"/api/members/communities/{community}/members", headers=member)
        ).raise_for_status()

        async def submit(i: int) -> httpx.Response:
            body = "Buy now, best price! 加微信 for free money" if i % 5 == 0 else f"Hello {i}"
            return await gw.post(
                f"/api/content/communities/{community}/posts",
                json={"title": f"Post {i}", "body": body, "format": "text"},
                headers=member,
            )

        for _ in range(600):  # content learns of the membership from members' events: 30 s
            r = await submit(-1)
            if r.status_code != 403:
                break
            await asyncio.sleep(0.05)
        r.raise_for_status()
        latencies: list[float] = []
        statuses: dict[str, int] = {}
        timeouts = 0
        for i in range(VERDICTS):
            t0 = time.perf_counter()
            r = await submit(i)
            assert r.status_code == 201, r.text
            post = r.json()["id"]
            while True:
                status = (await gw.get(f"/api/content/posts/{post}", headers=member)).json()
                if status.get("status") not in (None, "pending_review"):
                    latencies.append((time.perf_counter() - t0) * 1000)
                    statuses[status["status"]] = statuses.get(status["status"], 0) + 1
                    break
                if time.perf_counter() - t0 > 10:
                    timeouts += 1
                    break
                await asyncio.sleep(0.002)
    latencies.sort()
    print("\n== Verdict latency: post through the gateway → verdict applied, seen by a reader ==")
    if not latencies:
        print(f"no verdict was applied within 10 s ({timeouts} timed out)")
        return {}
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    print(
        f"posts {len(latencies)}/{VERDICTS} {statuses} (timed out {timeouts})  p50 {p50:.1f} ms"
        f"  p99 {p99:.1f} ms  max {latencies[-1]:.1f} ms"
    )
    note = f"{len(latencies)}/{VERDICTS} posts {statuses}, {timeouts} timed out"
    return {
        "screening.verdict_p50": Measured(round(p50, 1), note, not timeouts),
        "screening.verdict_p99": Measured(round(p99, 1), note, not timeouts),
    }


def registrations_bench() -> Figures:
    """Events' registrations/s under contention (bench/registrations.py, issue 13)."""
    import registrations

    out = registrations.main()
    if out is None:
        raise Skipped("needs PostgreSQL")
    note = f"median of {registrations.ROUNDS} rounds, c={registrations.CONCURRENCY}"
    if not out["exact"]:
        note += ", NOT exact or with errors"
    return {"registrations.rate": Measured(round(float(out["rps"]), 1), note, bool(out["exact"]))}


def _metrics_module(name: str) -> Any:
    """metrics-core's bench modules (bench/metrics*.py), or Skipped if they are not merged."""
    if not (HERE / f"{name}.py").exists():
        raise Skipped(f"bench/{name}.py not merged (metrics-core branch)")
    return __import__(name)


def metrics_bench(backends: Backends) -> Figures:
    """Ingest >= 5,000/s, rebuild >= 20,000/s, dashboard and cohort p95 <= 50 ms (issue 14)."""
    metrics = _metrics_module("metrics")
    if backends.postgres_admin_url is None:
        raise Skipped("needs PostgreSQL")
    f = asyncio.run(metrics.ingest(backends.database_url("benchmetrics", "postgres")))
    scale = f"{f['events']:,} events, {metrics.MEMBERS:,} members"
    figures: Figures = {
        "metrics.ingest_rate": Measured(
            f["ingest_per_s"], f"{scale}; {f['ingest_cpu_per_s']:,}/CPU-s"
        ),
        "metrics.dashboard_p95": Measured(f["series_p95_ms"], f"{scale}; 90-day DAU/WAU/MAU"),
        "metrics.cohort_p95": Measured(f["cohorts_p95_ms"], f"{scale}; 12-week D1/D7/D30"),
    }
    print(
        f"metrics ingest {f['ingest_per_s']:,}/s; series p95 {f['series_p95_ms']} ms;"
        f" cohorts p95 {f['cohorts_p95_ms']} ms ({scale})"
    )
    if backends.nats_url:
        r = asyncio.run(
            metrics.rebuild_bench(
                backends.database_url("benchrebuild", "postgres"), backends.nats_url
            )
        )
        print(f"metrics rebuild {r['rebuild_per_s']:,}/s ({r['rebuild_events']:,} events)")
        figures["metrics.rebuild_rate"] = Measured(
            r["rebuild_per_s"], f"{r['rebuild_events']:,} events from JetStream"
        )
    return figures


def metrics_funnel_bench(backends: Backends) -> Figures:
    """Funnel p95 <= 50 ms at 5M events / 200k members (issue 14), on PostgreSQL."""
    metrics_funnel = _metrics_module("metrics_funnel")
    if backends.postgres_admin_url is None:
        raise Skipped("needs PostgreSQL")
    f = asyncio.run(metrics_funnel.run(backends.database_url("benchfunnel", "postgres")))
    metrics_funnel.report(f)
    return {
        "metrics.funnel_p95": Measured(
            f["funnel_p95_ms"], f"{f['events']:,} events, {f['members']:,} members"
        )
    }


def transports_bench() -> Figures:
    """gateway/bench/transports.py (its own Markdown table), req/s of each transport at c=64."""
    out = subprocess.run(
        [sys.executable, str(HERE.parent / "gateway/bench/transports.py"), "--seconds", "5"],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    print(out.stdout, end="")
    figures: Figures = {}
    for line in out.stdout.splitlines():
        cols = [c.strip() for c in line.strip("|").split("|")]
        if len(cols) == 6 and cols[1] == "64":
            key = {"httpx (default pool)": "httpx", "httpx + httpx-aiohttp": "httpx_aiohttp"}
            name = f"transports.{key.get(cols[0], cols[0])}_c64"
            figures[name] = Measured(
                float(cols[3].replace(",", "")), f"p50 {cols[4]} ms, p99 {cols[5]} ms"
            )
    return figures


def load_bench(platform: Platform) -> Figures:
    """The fixed-arrival-rate mixed load of issue 15, with its ledger (bench/mixed_load.py)."""
    import mixed_load

    figures: Figures = mixed_load.bench(
        platform.gateway, platform.nats_url, platform.subject_prefix
    )
    return figures


class Skipped(Exception):
    """A bench that cannot run here: its rows stay null with this reason."""


class Context:
    """What benches share within one run: the backends and one started platform, lazily."""

    def __init__(self) -> None:
        self._backends: Backends | None = None
        self._platform: Platform | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.signer: AssertionSigner | None = None

    @property
    def backends(self) -> Backends:
        """NATS and PostgreSQL, found or started once."""
        if self._backends is None:
            self._backends = resolve_backends()
            print("\n".join(self._backends.describe()))
        return self._backends

    def platform(self) -> tuple[Platform, AssertionSigner]:
        """Every service and the gateway, started on first use (BENCH_DB: sqlite/postgres)."""
        if self._platform is None:
            backends = self.backends
            kind = os.environ.get("BENCH_DB", backends.primary_db)
            print(f"bench databases: {kind}; {os.cpu_count()} cores")
            self._tmp = tempfile.TemporaryDirectory(prefix="hearth-bench-")
            tmp = Path(self._tmp.name)
            self._platform = Platform(
                workdir=tmp,
                nats_url=backends.nats_url or "",
                subject_prefix="b" + uuid.uuid4().hex[:8],
                database_urls={c: backends.database_url(c, kind) for c in CONTEXTS},
                extra_env={"HEARTH_LOG_LEVEL": "WARNING"},
            ).start(timeout=180)  # six processes migrate at once: slow on a loaded machine
            self.signer = AssertionSigner((tmp / "keys" / "assertion.pem").read_text())
        assert self.signer is not None
        return self._platform, self.signer

    def close(self) -> None:
        """Stop what this run started."""
        if self._platform is not None:
            self._platform.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
        if self._backends is not None:
            self._backends.close()


@dataclass(frozen=True)
class Bench:
    """A registered bench: its name (BENCH=name), the rows it fills, and how to run it."""

    name: str
    rows: tuple[Spec, ...]
    run: Callable[[Context], Figures]


def ms(name: str, bound: float | None = None, issue: str = "") -> Spec:
    """A latency row in ms, judged `<= bound` when the issue names one."""
    return Spec(name, "ms", Target("<=", bound) if bound is not None else None, issue)


BENCHES: tuple[Bench, ...] = (
    Bench(
        "matcher",
        (Spec("screening.rate", "items/s/core", Target(">=", 20_000), "12"),),
        lambda ctx: matcher_throughput(),
    ),
    Bench(
        "gateway",
        (
            Spec("gateway.throughput_ratio", "gw/direct", Target(">=", 0.40), "2"),
            ms("gateway.added_p50", 1.0, "2"),
            Spec("gateway.c64_vs_c8", "ratio", Target(">=", 0.97), "2"),
        ),
        lambda ctx: gateway_vs_direct(*ctx.platform()),
    ),
    Bench(
        "propagation",
        (ms("propagation.p50", issue="2"), ms("propagation.p99", issue="2")),
        lambda ctx: asyncio.run(propagation(*ctx.platform())),
    ),
    Bench(
        "verdict",
        (ms("screening.verdict_p50", issue="12"), ms("screening.verdict_p99", 150, "12")),
        lambda ctx: asyncio.run(verdict_latency(ctx.platform()[0])),
    ),
    Bench(
        "content_search",
        (ms("search.p95", 50, "11"), ms("list.p95", 20, "11")),
        lambda ctx: content_search_bench(ctx.backends),
    ),
    Bench(
        "registrations",
        (Spec("registrations.rate", "reg/s", Target(">=", 500), "13"),),
        lambda ctx: registrations_bench(),
    ),
    Bench(
        "metrics",
        (
            Spec("metrics.ingest_rate", "events/s", Target(">=", 5_000), "14"),
            Spec("metrics.rebuild_rate", "events/s", Target(">=", 20_000), "14"),
            ms("metrics.dashboard_p95", 50, "14"),
            ms("metrics.cohort_p95", 50, "14"),
        ),
        lambda ctx: metrics_bench(ctx.backends),
    ),
    Bench(
        "metrics_funnel",
        (ms("metrics.funnel_p95", 50, "14"),),
        lambda ctx: metrics_funnel_bench(ctx.backends),
    ),
    Bench(
        "load",
        (
            Spec("load.error_rate", "%", Target("<=", 0), "15"),
            ms("load.p50", issue="15"),
            ms("load.p95", issue="15"),
            ms("load.p99", issue="15"),
            Spec("load.rate", "req/s", None, "15"),
            Spec("load.ledger_problems", "count", Target("<=", 0), "15"),
            Spec("load.lag_drain", "s", Target("<=", 10), "15"),
        ),
        lambda ctx: load_bench(ctx.platform()[0]),
    ),
    Bench(
        "transports",
        tuple(
            Spec(f"transports.{t}_c64", "req/s", None, "2")
            for t in ("httpx", "httpx_aiohttp", "aiohttp")
        ),
        lambda ctx: transports_bench(),
    ),
)


def select(only: str) -> list[tuple[Bench, set[str] | None]]:
    """Benches named by BENCH (bench names, group prefixes like `metrics`, or row names);
    with each, the rows to keep (None: all of them). Empty: every bench."""
    if not only:
        return [(b, None) for b in BENCHES]
    chosen: dict[str, tuple[Bench, set[str] | None]] = {}
    for word in (w.strip() for w in only.split(",") if w.strip()):
        hit = False
        for b in BENCHES:
            if b.name == word or b.name.startswith(word + "_"):
                chosen[b.name] = (b, None)
                hit = True
            elif word in {s.name for s in b.rows}:
                kept = chosen.get(b.name, (b, set()))[1]
                if kept is not None:
                    chosen[b.name] = (b, kept | {word})
                hit = True
        if not hit:
            names = ", ".join(b.name for b in BENCHES)
            raise SystemExit(f"BENCH={word!r}: no such bench or row (benches: {names})")
    return [chosen[b.name] for b in BENCHES if b.name in chosen]


def main(argv: list[str] | None = None) -> int:
    """Run the selected benches, print the table, merge it into bench/results.json."""
    parser = argparse.ArgumentParser(description="make bench: one table of every figure")
    parser.add_argument("--only", default=os.environ.get("BENCH", ""), help="benches or rows")
    parser.add_argument("--list", action="store_true", help="list benches and rows, run none")
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    args = parser.parse_args(argv)
    if os.environ.get("BENCH_ONLY") and not args.only:  # the older spelling
        args.only = os.environ["BENCH_ONLY"]
    if args.list:
        for b in BENCHES:
            print(f"{b.name:15} {', '.join(s.name for s in b.rows)}")
        return 0
    where, commit = machine(), git_commit()
    # The knobs this run was given belong to the command that reproduces its figures.
    knobs = "".join(
        f"{k}={v} "
        for k, v in sorted(os.environ.items())
        if k.startswith("BENCH_") and k != "BENCH_ONLY"
    )
    rows = []
    ctx = Context()
    try:
        for bench, keep in select(args.only):
            command = f"{knobs}make bench BENCH={bench.name}"
            try:
                figures = bench.run(ctx)
            except Skipped as exc:
                figures = {s.name: Measured(None, str(exc)) for s in bench.rows}
            except Exception as exc:  # one broken bench must not hide every other figure
                traceback.print_exc()
                reason = f"failed: {type(exc).__name__}: {str(exc)[:80]}"
                figures = {s.name: Measured(None, reason) for s in bench.rows}
            for spec in bench.rows:
                if keep is None or spec.name in keep:
                    rows.append(
                        build_row(
                            spec,
                            figures.get(spec.name),
                            command=command,
                            where=where,
                            commit=commit,
                        )
                    )
    finally:
        ctx.close()
    print("\n== make bench: the table ==")
    print(render(rows))
    write(args.out, rows)
    print(f"written to {args.out} (merged with the rows of earlier runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
