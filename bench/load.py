"""A small closed-loop HTTP load generator (aiohttp), run in its own process by bench/run.py."""

from __future__ import annotations

import asyncio
import json
import sys
import time

import aiohttp


async def run(
    url: str, headers: dict[str, str], concurrency: int, seconds: float, warmup: float
) -> dict:
    """Hit one URL with N concurrent keep-alive connections; latency percentiles and req/s."""
    latencies: list[float] = []
    errors = 0
    total = 0  # every completed request, warm-up included (for per-request CPU figures)
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        stop_warm = time.perf_counter() + warmup
        end = stop_warm + seconds

        async def worker() -> None:
            nonlocal errors, total
            while True:
                start = time.perf_counter()
                if start > end:
                    return
                async with session.get(url, headers=headers) as response:
                    await response.read()
                    ok = response.status == 200
                done = time.perf_counter()
                total += 1
                if start >= stop_warm:
                    if ok:
                        latencies.append(done - start)
                    else:
                        errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    latencies.sort()
    n = len(latencies)
    return {
        "requests": n,
        "errors": errors,
        "total": total,
        "rps": n / seconds,
        "p50_ms": latencies[n // 2] * 1000 if n else None,
        "p99_ms": latencies[min(n - 1, int(n * 0.99))] * 1000 if n else None,
    }


async def alternate(
    first: tuple[str, dict[str, str]],
    second: tuple[str, dict[str, str]],
    seconds: float,
    warmup: float,
) -> dict:
    """One connection each, requests alternating between two targets (which goes first flips
    every round), so both see the same moment's machine: p50/p99 of each and the p50 gap."""
    samples: tuple[list[float], list[float]] = ([], [])
    targets = (first, second)
    async with aiohttp.ClientSession() as a, aiohttp.ClientSession() as b:
        sessions = (a, b)
        stop_warm = time.perf_counter() + warmup
        end = stop_warm + seconds
        turn = 0
        while time.perf_counter() < end:
            order = (0, 1) if turn % 2 == 0 else (1, 0)
            turn += 1
            for i in order:
                url, headers = targets[i]
                start = time.perf_counter()
                async with sessions[i].get(url, headers=headers) as response:
                    await response.read()
                    ok = response.status == 200
                if ok and start >= stop_warm:
                    samples[i].append(time.perf_counter() - start)
    out = {}
    for name, values in zip(("first", "second"), samples, strict=True):
        values.sort()
        n = len(values)
        out[name] = {
            "requests": n,
            "p50_ms": values[n // 2] * 1000 if n else None,
            "p99_ms": values[min(n - 1, int(n * 0.99))] * 1000 if n else None,
        }
    return out


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    if "first" in spec:
        spec["first"], spec["second"] = tuple(spec["first"]), tuple(spec["second"])
        print(json.dumps(asyncio.run(alternate(**spec))))
    else:
        print(json.dumps(asyncio.run(run(**spec))))
