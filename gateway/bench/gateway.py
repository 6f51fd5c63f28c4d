"""Measure the whole gateway hop: client -> gateway (/api proxy) -> upstream, against direct.

Starts bench/upstream.py and the gateway (uvicorn --factory hearth_gateway.main:create_app,
uvloop + httptools) as subprocesses on 127.0.0.1, takes a dev token, then with one aiohttp
client measures GET requests direct to the upstream and through the gateway (token check,
header rewrite, assertion signing, relay) at each concurrency level: req/s, p50, p99.

    cd /work/main && .venv/bin/python gateway/bench/gateway.py [--requests N] [--seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transports import free_port, measure, percentile, upstream

GATEWAY_PID: int | None = None


def gateway_cpu_seconds() -> float:
    """CPU time (user + system) the gateway process has used so far (Linux /proc)."""
    assert GATEWAY_PID is not None
    fields = Path(f"/proc/{GATEWAY_PID}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def gateway(upstream_url: str) -> Iterator[str]:
    """Run the gateway in a subprocess with every context routed to the benchmark upstream."""
    port = free_port()
    env = dict(os.environ)
    env["HEARTH_GATEWAY_ENVIRONMENT"] = "development"
    env["HEARTH_GATEWAY_UPSTREAMS"] = json.dumps({"members": upstream_url})
    env["HEARTH_GATEWAY_DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp()}/gateway.db"
    # The in-memory limiter runs on every request (its cost is part of the figures) with
    # budgets a benchmark from one address never exhausts.
    for scope in ("IP", "PRINCIPAL"):
        env[f"HEARTH_GATEWAY_RATE_LIMIT_{scope}_PER_SECOND"] = "1000000"
        env[f"HEARTH_GATEWAY_RATE_LIMIT_{scope}_BURST"] = "1000000"
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "hearth_gateway.main:create_app",
        "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop", "--http", "httptools",
        "--log-level", "warning", "--no-access-log", "--no-proxy-headers",
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env)
    global GATEWAY_PID
    GATEWAY_PID = process.pid
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


async def token(session: aiohttp.ClientSession, base: str) -> str:
    """A dev-account token, retrying until the gateway is up."""
    deadline = time.monotonic() + 15
    while True:
        try:
            credentials = {"username": "member", "password": "hearth-member"}
            async with session.post(base + "/auth/token", json=credentials) as response:
                return str((await response.json())["access_token"])
        except aiohttp.ClientConnectionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def run(up: str, gw: str, levels: list[int], requests: int, seconds: float) -> None:
    """Print a Markdown table: direct vs through the gateway, per concurrency level."""
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:
        headers = {"Authorization": "Bearer " + await token(session, gw)}

        async def direct(url: str) -> int:
            async with session.get(url) as response:
                return len(await response.read())

        async def via_gateway(url: str) -> int:
            async with session.get(url, headers=headers) as response:
                assert response.status == 200, response.status
                return len(await response.read())

        print(
            f"{requests} requests or {seconds:g} s per cell; {os.cpu_count()} CPUs; "
            f"load average {os.getloadavg()[0]:.2f}"
        )
        print("| path | concurrency | requests | req/s | p50 ms | p99 ms | gateway CPU µs/req |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        cells = [
            ("direct to upstream", direct, up + "/communities/1"),
            ("through the gateway", via_gateway, gw + "/api/members/communities/1"),
        ]
        for name, fetch, url in cells:
            for concurrency in levels:
                await measure(fetch, url, concurrency, max(200, concurrency * 4), 5)  # warm up
                cpu_before = gateway_cpu_seconds()
                count, elapsed, latencies = await measure(
                    fetch, url, concurrency, requests, seconds
                )
                # The gateway's CPU per request: flat across levels means no per-request
                # cost that grows with concurrency (direct cells show its idle cost).
                cpu_us = (gateway_cpu_seconds() - cpu_before) / max(1, count) * 1e6
                print(
                    f"| {name} | {concurrency} | {count} | {count / elapsed:,.0f} | "
                    f"{percentile(latencies, 50):.2f} | {percentile(latencies, 99):.2f} | "
                    f"{cpu_us:,.0f} |",
                    flush=True,
                )
        print(f"load average at the end {os.getloadavg()[0]:.2f}")


def main() -> None:
    """Parse arguments, start upstream and gateway, run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000, help="requests per cell")
    parser.add_argument("--seconds", type=float, default=15.0, help="time limit per cell")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    args = parser.parse_args()
    import uvloop

    with upstream() as up, gateway(up) as gw:
        uvloop.run(run(up, gw, args.concurrency, args.requests, args.seconds))


if __name__ == "__main__":
    main()
