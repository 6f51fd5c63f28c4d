"""Registrations per second under contention on PostgreSQL (issue 13: target >= 500/s).

One events service process (uvicorn, as `hearth-events serve` runs it) on a fresh PostgreSQL
database; every round publishes an activity with 100 seats and sends 1,000 registrations of
distinct members from CONCURRENCY closed-loop keep-alive connections (a separate client
process, so the client does not share the server's event loop). Every registration of one
activity takes that activity's row lock, so this measures the serialised path the
no-overbooking guarantee costs. Each round is checked: exactly 100 confirmed, 900 waitlisted,
positions 1..1000, no errors.

`python bench/registrations.py` (or `make bench BENCH=registrations`). Knobs:
BENCH_REG_CONCURRENCY (100), BENCH_REG_PER_ROUND (1000), BENCH_REG_ROUNDS (3),
BENCH_REG_PYSPY (a file: sample the server with py-spy, collapsed stacks, if installed).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx

from servicekit.identity import AssertionSigner, Principal, generate_keypair
from servicekit.testing.backends import resolve_backends

HERE = Path(__file__).parent
CONCURRENCY = int(os.environ.get("BENCH_REG_CONCURRENCY", "100"))
PER_ROUND = int(os.environ.get("BENCH_REG_PER_ROUND", "1000"))
ROUNDS = int(os.environ.get("BENCH_REG_ROUNDS", "3"))
SEATS = 100


async def client(spec: dict) -> dict:
    """The load: each connection registers the next member until all are done."""
    import aiohttp

    # Signed here, just before use: assertions are short-lived (60 s).
    signer = AssertionSigner(spec["private_key"])
    queue: asyncio.Queue[str] = asyncio.Queue()
    for user in spec["users"]:
        queue.put_nowait(user)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors: list[str] = []
    connector = aiohttp.TCPConnector(limit=spec["concurrency"])
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            while not queue.empty():
                user = queue.get_nowait()
                url = spec["url"]
                assertion = signer.sign(Principal(subject=uuid.UUID(user), roles=frozenset()))
                start = time.perf_counter()
                try:
                    async with session.post(url, headers={"x-hearth-identity": assertion}) as r:
                        await r.read()
                        statuses[str(r.status)] = statuses.get(str(r.status), 0) + 1
                except aiohttp.ClientError as exc:
                    errors.append(type(exc).__name__)
                    continue
                latencies.append(time.perf_counter() - start)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(spec["concurrency"])))
        elapsed = time.perf_counter() - began
    latencies.sort()
    n = len(latencies)
    return {
        "elapsed": elapsed,
        "rps": n / elapsed if elapsed else 0.0,
        "statuses": statuses,
        "errors": errors[:5],
        "error_count": len(errors),
        "p50_ms": latencies[n // 2] * 1000 if n else None,
        "p99_ms": latencies[min(n - 1, int(n * 0.99))] * 1000 if n else None,
    }


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _seed(database_url: str, community: uuid.UUID, users: list[uuid.UUID]) -> None:
    """Active memberships in the events read model, as members' snapshots would leave them."""
    from hearth_events.models import CommunityMembership
    from servicekit.db import Database
    from servicekit.ids import utcnow

    db = Database(database_url)
    try:
        async with db.session() as session:
            for user in users:
                session.add(
                    CommunityMembership(
                        community_id=community,
                        user_id=user,
                        membership_id=uuid.uuid4(),
                        role="owner" if user == users[0] else "member",
                        status="active",
                        joined_at=utcnow(),
                        version=1,
                    )
                )
            await session.commit()
    finally:
        await db.dispose()


async def _counts(database_url: str, activity_id: uuid.UUID) -> tuple[dict[str, int], bool]:
    from sqlalchemy import func
    from sqlmodel import col, select

    from hearth_events.models import Registration
    from servicekit.db import Database

    db = Database(database_url)
    try:
        async with db.session() as session:
            rows = (
                await session.exec(
                    select(Registration.status, func.count())
                    .where(col(Registration.activity_id) == activity_id)
                    .group_by(col(Registration.status))
                )
            ).all()
            positions = (
                await session.exec(
                    select(Registration.position, Registration.status)
                    .where(col(Registration.activity_id) == activity_id)
                    .order_by(col(Registration.position))
                )
            ).all()
    finally:
        await db.dispose()
    ordered = [p for p, _ in positions] == list(range(1, len(positions) + 1)) and all(
        s == "confirmed" for _, s in positions[:SEATS]
    )
    return {str(s): int(n) for s, n in rows}, ordered


def main() -> dict[str, float | bool] | None:
    """Start the service, run the rounds, print the figures and the verdict; return the median
    rate and whether every round was exact and error-free (None: no PostgreSQL)."""
    from servicekit.ids import utcnow

    backends = resolve_backends()
    try:
        if not backends.postgres_admin_url:
            print("registrations bench: PostgreSQL is not available (skipped)")
            return None
        database_url = backends.database_url("events", "postgres")
        private, public = generate_keypair()
        signer = AssertionSigner(private)
        with tempfile.TemporaryDirectory(prefix="hearth-regbench-") as tmp:
            key = Path(tmp) / "assertion.pub.pem"
            key.write_text(public)
            port = _free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
            env.update(
                {
                    "HEARTH_ENVIRONMENT": "test",
                    "HEARTH_NATS_URL": backends.nats_url or "",
                    "HEARTH_SUBJECT_PREFIX": "rb" + uuid.uuid4().hex[:8],
                    "HEARTH_IDENTITY_PUBLIC_KEY_FILE": str(key),
                    "HEARTH_LOG_LEVEL": "WARNING",
                    "HEARTH_EVENTS_DATABASE_URL": database_url,
                }
            )
            log = (Path(tmp) / "events.log").open("wb")
            # BENCH_REG_PYSPY=<file>: sample the server with py-spy (collapsed stacks) to see
            # where a registration spends its time.
            profile = os.environ.get("BENCH_REG_PYSPY")
            spy = str(Path(sys.executable).parent / "py-spy")
            wrap = [spy, "record", "-f", "raw", "-r", "200", "-o", profile, "--"] if profile else []
            proc = subprocess.Popen(
                [
                    *wrap,
                    str(Path(sys.executable).parent / "hearth-events"),
                    "serve",
                    "--port",
                    str(port),
                    "--migrate",
                ],
                env=env,
                cwd=tmp,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=bool(profile),
            )
            base = f"http://127.0.0.1:{port}"
            try:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError((Path(tmp) / "events.log").read_text()[-3000:])
                    time.sleep(0.2)
                figures = []
                for round_no in range(ROUNDS):
                    community = uuid.uuid4()
                    users = [uuid.uuid4() for _ in range(PER_ROUND + 1)]
                    asyncio.run(_seed(database_url, community, users))
                    starts = utcnow() + timedelta(days=7)
                    staff = signer.sign(
                        Principal(subject=uuid.uuid4(), roles=frozenset({"operator"}))
                    )
                    r = httpx.post(
                        base + "/activities",
                        json={
                            "community_id": str(community),
                            "title": f"Bench round {round_no}",
                            "kind": "offline_meetup",
                            "starts_at": starts.isoformat(),
                            "ends_at": (starts + timedelta(hours=2)).isoformat(),
                            "capacity": SEATS,
                        },
                        headers={"x-hearth-identity": staff},
                    )
                    r.raise_for_status()
                    activity = r.json()["id"]
                    spec = {
                        "concurrency": CONCURRENCY,
                        "url": f"{base}/activities/{activity}/registrations",
                        "users": [str(u) for u in users[1:]],
                        "private_key": private,
                    }
                    out = subprocess.run(
                        [sys.executable, __file__, "client"],
                        input=json.dumps(spec),
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    result = json.loads(out.stdout)
                    counts, ordered = asyncio.run(_counts(database_url, uuid.UUID(activity)))
                    exact = (
                        counts.get("confirmed") == SEATS
                        and counts.get("waitlisted") == PER_ROUND - SEATS
                        and ordered
                    )
                    print(
                        f"round {round_no}: {PER_ROUND} registrations, c={CONCURRENCY}: "
                        f"{result['rps']:7.1f}/s  p50 {result['p50_ms']:.1f} ms  "
                        f"p99 {result['p99_ms']:.1f} ms  statuses {result['statuses']}  "
                        f"errors {result['error_count']} {result['errors']}  "
                        f"counts {counts} {'exact' if exact else 'NOT EXACT'}"
                    )
                    figures.append((result["rps"], exact and result["error_count"] == 0))
                best = sorted(rps for rps, _ in figures)[len(figures) // 2]
                ok = all(good for _, good in figures)
                mark = "met" if best >= 500 and ok else "MISSED"
                print(
                    f"registrations under contention (PostgreSQL, median of {ROUNDS}): "
                    f"{best:.0f}/s — target >= 500/s, exact and error-free: {mark}"
                )
                return {"rps": best, "exact": ok}
            finally:
                if profile:  # SIGINT to the group: the server stops, py-spy writes its file
                    os.killpg(proc.pid, signal.SIGINT)
                else:
                    proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
    finally:
        backends.close()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "client":  # the spec on stdin (too big for argv)
        print(json.dumps(asyncio.run(client(json.loads(sys.stdin.read())))))
    else:
        main()
