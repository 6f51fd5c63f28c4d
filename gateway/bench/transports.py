"""Measure upstream HTTP transports for the gateway: httpx, httpx + httpx-aiohttp, aiohttp.

Starts bench/upstream.py under uvicorn (uvloop + httptools) in a subprocess on 127.0.0.1, then
for each transport and each concurrency level runs a bounded number of GET requests (stopping
early at a time limit) from one long-lived client and prints req/s, p50 and p99.

    cd /work/main && .venv/bin/python gateway/bench/transports.py [--requests N] [--seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

HERE = Path(__file__).resolve().parent
POOL_LIMIT = 100


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def upstream() -> Iterator[str]:
    """Run the benchmark upstream in a uvicorn subprocess; yield its base URL."""
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "upstream:app", "--app-dir", str(HERE),
        "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop", "--http", "httptools",
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    process = subprocess.Popen(command)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the benchmark upstream did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


Fetch = Callable[[str], Awaitable[int]]


@contextlib.asynccontextmanager
async def httpx_default() -> Any:
    """httpx.AsyncClient with its own (httpcore) pool and default limits."""
    async with httpx.AsyncClient() as client:

        async def fetch(url: str) -> int:
            response = await client.get(url)
            return len(response.content)

        yield fetch


@contextlib.asynccontextmanager
async def httpx_aiohttp() -> Any:
    """httpx.AsyncClient on the httpx-aiohttp transport (an aiohttp session underneath)."""
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=POOL_LIMIT))
    async with httpx.AsyncClient(transport=AiohttpTransport(client=session)) as client:

        async def fetch(url: str) -> int:
            response = await client.get(url)
            return len(response.content)

        yield fetch


@contextlib.asynccontextmanager
async def aiohttp_direct() -> Any:
    """aiohttp.ClientSession used directly, as the gateway does."""
    connector = aiohttp.TCPConnector(limit=POOL_LIMIT, keepalive_timeout=4)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def fetch(url: str) -> int:
            async with session.get(url) as response:
                return len(await response.read())

        yield fetch


TRANSPORTS = {
    "httpx (default pool)": httpx_default,
    "httpx + httpx-aiohttp": httpx_aiohttp,
    "aiohttp": aiohttp_direct,
}


async def measure(
    fetch: Fetch, url: str, concurrency: int, requests: int, seconds: float
) -> tuple[int, float, list[float]]:
    """Run up to `requests` calls over `concurrency` workers within `seconds`."""
    latencies: list[float] = []
    remaining = requests
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0 and time.perf_counter() < deadline:
            remaining -= 1
            started = time.perf_counter()
            await fetch(url)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(latencies), time.perf_counter() - started, latencies


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) in milliseconds."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index] * 1000


async def run(url: str, levels: list[int], requests: int, seconds: float) -> None:
    """Benchmark every transport at every concurrency level and print a Markdown table."""
    print(
        f"upstream {url}; {requests} requests or {seconds:g} s per cell; "
        f"python {sys.version.split()[0]}; {os.cpu_count()} CPUs; "
        f"aiohttp {aiohttp.__version__}; httpx {httpx.__version__}; "
        f"load average {os.getloadavg()[0]:.2f} (other processes skew the figures)"
    )
    print("| transport | concurrency | requests | req/s | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, factory in TRANSPORTS.items():
        for concurrency in levels:
            async with factory() as fetch:
                await measure(fetch, url, concurrency, max(200, concurrency * 4), 5)  # warm up
                count, elapsed, latencies = await measure(
                    fetch, url, concurrency, requests, seconds
                )
            print(
                f"| {name} | {concurrency} | {count} | {count / elapsed:,.0f} | "
                f"{percentile(latencies, 50):.2f} | {percentile(latencies, 99):.2f} |",
                flush=True,
            )
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


def main() -> None:
    """Parse arguments, start the upstream, run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000, help="requests per cell")
    parser.add_argument("--seconds", type=float, default=15.0, help="time limit per cell")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--no-uvloop", action="store_true", help="use the default asyncio loop")
    args = parser.parse_args()
    with upstream() as url:
        coroutine = run(url, args.concurrency, args.requests, args.seconds)
        if args.no_uvloop:
            asyncio.run(coroutine)
        else:
            import uvloop

            uvloop.run(coroutine)


if __name__ == "__main__":
    main()
