"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request

from servicekit.problems import Problem

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process is serving."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> dict[str, str]:
    """Readiness: every upstream's /healthz answers 200, else a 503 naming those down."""
    settings = request.app.state.settings
    down = await request.app.state.proxy.unready(settings.readiness_timeout_seconds)
    if down:
        raise Problem(
            503, "unavailable", "Upstreams unavailable", "some upstreams are down", down=down
        )
    return {"status": "ready"}
