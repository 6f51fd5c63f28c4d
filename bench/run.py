"""`make bench`: gateway overhead and event propagation latency, measured on this machine.

1. The same authenticated read (GET a community) sent through the gateway and directly to the
   members service, at 1, 8 and 64 connections, in one run: req/s, p50/p99, and the ratio.
2. Event propagation: HTTP write (a join) → the metrics consumer's committed effect, timed from
   the request start to the consumer's inbox row (same clock), p50/p99 over sequential writes.
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
from sqlalchemy import text

from servicekit.db import Database
from servicekit.identity import AssertionSigner, Principal
from servicekit.testing.backends import resolve_backends
from servicekit.testing.platform import CONTEXTS, Platform

HERE = Path(__file__).parent
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
JOINS = int(os.environ.get("BENCH_JOINS", "200"))


def load(url: str, headers: dict[str, str], concurrency: int) -> dict:
    """Run the load generator in its own process so it does not share the servers' event loops."""
    spec = {
        "url": url,
        "headers": headers,
        "concurrency": concurrency,
        "seconds": SECONDS,
        "warmup": 1.0,
    }
    out = subprocess.run(
        [sys.executable, str(HERE / "load.py"), json.dumps(spec)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(out.stdout)


def fmt(r: dict) -> str:
    return (
        f"{r['rps']:8.0f} req/s  p50 {r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:6.2f} ms"
        f"  errors {r['errors']}"
    )


def gateway_vs_direct(platform: Platform, signer: AssertionSigner) -> None:
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
    for concurrency in (1, 8, 64):
        direct_headers = {"x-hearth-identity": signer.sign(operator)}  # fresh: assertions live 60 s
        direct = load(
            f"{platform.service('members')}/communities/{community}", direct_headers, concurrency
        )
        via = load(f"{platform.gateway}/api/members/communities/{community}", bearer, concurrency)
        ratio = via["rps"] / direct["rps"]
        added = via["p50_ms"] - direct["p50_ms"]
        print(f"c={concurrency:<3} direct  {fmt(direct)}")
        print(f"c={concurrency:<3} gateway {fmt(via)}")
        print(
            f"c={concurrency:<3} gateway/direct throughput {ratio:5.1%}   p50 added {added:+.2f} ms"
        )


async def propagation(platform: Platform, signer: AssertionSigner) -> None:
    operator = Principal(subject=uuid.uuid4(), roles=frozenset({"operator"}))
    async with httpx.AsyncClient(base_url=platform.service("members")) as members:
        r = await members.post(
            "/communities",
            json={"name": "Propagation", "kind": "internal"},
            headers={"x-hearth-identity": signer.sign(operator)},
        )
        community = r.json()["id"]
        started: dict[str, float] = {}
        for _ in range(JOINS):
            user = Principal(subject=uuid.uuid4(), roles=frozenset({"member"}))
            headers = {"x-hearth-identity": signer.sign(user)}
            t0 = time.time()
            r = await members.post(f"/communities/{community}/members", headers=headers)
            assert r.status_code == 201, r.text
            started[r.json()["id"]] = t0
            await asyncio.sleep(0.02)
    await asyncio.sleep(2)
    members_db = Database(platform.database_urls["members"])
    metrics_db = Database(platform.database_urls["metrics"])
    async with members_db.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT event_id, data FROM outbox WHERE event_type = "
                    "'hearth.members.member.joined.v1'"
                )
            )
        ).all()
    event_of = {}
    for event_id, data in rows:
        data = json.loads(data) if isinstance(data, str) else data
        event_of[str(event_id).replace("-", "")] = data["membership_id"]
    async with metrics_db.engine.connect() as conn:
        handled = (await conn.execute(text("SELECT event_id, handled_at FROM inbox"))).all()
    latencies = []
    for event_id, handled_at in handled:
        membership = event_of.get(str(event_id).replace("-", ""))
        if membership in started:
            if isinstance(handled_at, str):
                from datetime import datetime

                handled_at = datetime.fromisoformat(handled_at)
            if handled_at.tzinfo is None:
                from datetime import UTC

                handled_at = handled_at.replace(tzinfo=UTC)
            latencies.append((handled_at.timestamp() - started[membership]) * 1000)
    await members_db.dispose()
    await metrics_db.dispose()
    latencies.sort()
    n = len(latencies)
    print("\n== Event propagation: HTTP join → metrics consumer's committed effect ==")
    print(
        f"events {n}/{JOINS}  p50 {latencies[n // 2]:.1f} ms"
        f"  p99 {latencies[min(n - 1, int(n * 0.99))]:.1f} ms"
        f"  max {latencies[-1]:.1f} ms"
    )


def main() -> None:
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
        finally:
            platform.stop()
            backends.close()


if __name__ == "__main__":
    main()
