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
6. Metrics on PostgreSQL (bench/metrics.py): incremental ingest and rebuild events/s, and the
   DAU/WAU/MAU series and cohort matrix p95 over generated activity (BENCH_METRICS_EVENTS).
6. Metrics' funnel over generated activity (bench/metrics_funnel.py; BENCH_FUNNEL_EVENTS,
   default 5,000,000 from 200,000 members).
Each target named by an issue gets a verdict line (met / MISSED) beside its figure.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from servicekit.identity import AssertionSigner, Principal
from servicekit.testing.backends import resolve_backends
from servicekit.testing.platform import CONTEXTS, Platform

HERE = Path(__file__).parent
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


def gateway_vs_direct(platform: Platform, signer: AssertionSigner) -> None:
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
    if not all(d["requests"] and v["requests"] for d, v in results.values()):
        print("targets: not judged (a level had no successful request)")
        return
    print("targets (issue: gateway):")
    worst = min(v["rps"] / d["rps"] for d, v in results.values())
    print(verdict(worst >= 0.40, f"gateway >= 40% of direct at every level: lowest {worst:.1%}"))
    if direct1["requests"] and via1["requests"]:
        added = via1["p50_ms"] - direct1["p50_ms"]
        print(
            verdict(
                added <= 1.0, f"p50 added <= 1 ms at one connection (alternating): {added:+.2f} ms"
            )
        )
    r8, r64 = results[8][1]["rps"], results[64][1]["rps"]
    print(
        verdict(
            r64 >= r8 * 0.97,
            f"no collapse, gateway at 64 >= at 8 (3% noise): {r64:.0f} vs {r8:.0f} req/s",
        )
    )


async def propagation(platform: Platform, signer: AssertionSigner) -> None:
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
        return
    print(
        f"events {n}/{JOINS} (timed out {timeouts})  p50 {percentile(latencies, 0.5):.1f} ms"
        f"  p99 {percentile(latencies, 0.99):.1f} ms  max {latencies[-1]:.1f} ms"
    )


def matcher_throughput() -> None:
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


def content_search_bench(backends: object) -> None:
    """Search p95 <= 50 ms and deep-page p95 <= 20 ms (issue 11), on PostgreSQL."""
    sys.path.insert(0, str(HERE))
    import content_search

    if getattr(backends, "postgres_admin_url", None) is None:
        print("content search: skipped (needs PostgreSQL)")
        return
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


def metrics_bench(backends: object) -> None:
    """Ingest >= 5,000/s, rebuild >= 20,000/s, dashboard reads p95 <= 50 ms (issue 14)."""
    sys.path.insert(0, str(HERE))
    import metrics

    if getattr(backends, "postgres_admin_url", None) is None:
        print("metrics: skipped (needs PostgreSQL)")
        return
    metrics.main(
        backends.database_url("benchmetrics", "postgres"),  # type: ignore[attr-defined]
        getattr(backends, "nats_url", None),
        lambda: backends.database_url("benchrebuild", "postgres"),  # type: ignore[attr-defined]
    )


def metrics_funnel_bench(backends: object) -> None:
    """Funnel p95 <= 50 ms at 5M events / 200k members (issue 14), on PostgreSQL."""
    sys.path.insert(0, str(HERE))
    import metrics_funnel

    if getattr(backends, "postgres_admin_url", None) is None:
        print("metrics funnel: skipped (needs PostgreSQL)")
        return
    url = backends.database_url("benchfunnel", "postgres")  # type: ignore[attr-defined]
    metrics_funnel.report(asyncio.run(metrics_funnel.run(url)))


def main() -> None:
    # bench/registrations.py: events' registrations/s under contention (issue 13), alone with
    # BENCH_ONLY=registrations, else after the platform benches.
    import registrations

    if os.environ.get("BENCH_ONLY") == "registrations":
        registrations.main()
        return
    matcher_throughput()
    backends = resolve_backends()
    kind = os.environ.get("BENCH_DB", backends.primary_db)
    print("\n".join(backends.describe()))
    print(f"bench databases: {kind}; {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="hearth-bench-") as tmp:
        platform = Platform(
            workdir=Path(tmp),
            nats_url=backends.nats_url or "",
            subject_prefix="b" + uuid.uuid4().hex[:8],
            database_urls={c: backends.database_url(c, kind) for c in CONTEXTS},
            extra_env={"HEARTH_LOG_LEVEL": "WARNING"},
        ).start()
        try:
            signer = AssertionSigner((Path(tmp) / "keys" / "assertion.pem").read_text())
            gateway_vs_direct(platform, signer)
            asyncio.run(propagation(platform, signer))
            content_search_bench(backends)
            metrics_bench(backends)
            metrics_funnel_bench(backends)
        finally:
            platform.stop()
            backends.close()
    registrations.main()


if __name__ == "__main__":
    main()
