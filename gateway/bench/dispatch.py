"""Measure the cost of reaching the proxy: FastAPI routing + middleware vs GatewayApp dispatch.

Both apps get the gateway's own routes and problem handlers; the proxy is replaced by a no-op
ASGI app, so the figure is the framework's per-request overhead alone (no network).

    cd /work/main && .venv/bin/python gateway/bench/dispatch.py
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from asgi_lifespan import LifespanManager

from hearth_gateway.main import create_app

SCOPE = {
    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
    "scheme": "http", "path": "/api/members/communities", "raw_path": b"/api/members/communities",
    "root_path": "", "query_string": b"", "headers": [(b"host", b"gateway")],
    "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
}  # fmt: skip


async def noop(scope: Any, receive: Any, send: Any) -> None:
    """An ASGI app that answers 200 with no body."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def receive() -> dict[str, Any]:
    """An empty request body."""
    return {"type": "http.request", "body": b"", "more_body": False}


async def send(message: dict[str, Any]) -> None:
    """Discard the response."""


async def per_request_us(app: Any, n: int = 20_000) -> float:
    """Mean microseconds per request through app."""
    for _ in range(1000):
        await app(dict(SCOPE), receive, send)
    started = time.perf_counter()
    for _ in range(n):
        await app(dict(SCOPE), receive, send)
    return (time.perf_counter() - started) / n * 1e6


async def main() -> None:
    """Print both figures."""
    dispatched = create_app()
    dispatched.proxy = noop  # type: ignore[assignment]
    mounted = create_app()
    mounted.mount("/api", noop)
    mounted.__class__ = mounted.__class__.__mro__[1]  # plain FastAPI.__call__: routing decides
    async with LifespanManager(dispatched), LifespanManager(mounted):
        print(f"no-op app called directly:           {await per_request_us(noop):6.1f} us")
        print(f"GatewayApp dispatch to the proxy:    {await per_request_us(dispatched):6.1f} us")
        print(f"FastAPI Mount('/api') + middleware:  {await per_request_us(mounted):6.1f} us")


if __name__ == "__main__":
    asyncio.run(main())
