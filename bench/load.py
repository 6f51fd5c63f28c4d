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
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        stop_warm = time.perf_counter() + warmup
        end = stop_warm + seconds

        async def worker() -> None:
            nonlocal errors
            while True:
                start = time.perf_counter()
                if start > end:
                    return
                async with session.get(url, headers=headers) as response:
                    await response.read()
                    ok = response.status == 200
                done = time.perf_counter()
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
        "rps": n / seconds,
        "p50_ms": latencies[n // 2] * 1000 if n else None,
        "p99_ms": latencies[min(n - 1, int(n * 0.99))] * 1000 if n else None,
    }


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    print(json.dumps(asyncio.run(run(**spec))))
