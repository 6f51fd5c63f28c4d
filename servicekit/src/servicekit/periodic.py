"""Periodic background work (schedulers) for `ServiceDefinition.background`.

Every scheduler of every service has the same shape: run one pass, say what it did, survive a
failing pass, wait, again. The passes themselves must be safe on several replicas (they claim
rows with `FOR UPDATE SKIP LOCKED` or a lease); this loop only paces them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from servicekit.runtime import ServiceRuntime

log = logging.getLogger(__name__)

Pass = Callable[[ServiceRuntime], Awaitable[str | None]]
"""One scheduler pass: returns a summary to log when it did something, else None."""


def periodic(
    name: str, run_pass: Pass, *, interval_setting: str, default_seconds: float
) -> Callable[[ServiceRuntime], Awaitable[None]]:
    """A background loop named `name` running `run_pass` every `settings.<interval_setting>` s."""

    async def loop(runtime: ServiceRuntime) -> None:
        interval = float(getattr(runtime.settings, interval_setting, default_seconds))
        while True:
            try:
                summary = await run_pass(runtime)
                if summary:
                    log.info("%s: %s", name, summary)
            except asyncio.CancelledError:
                raise
            except Exception:  # keep the loop alive; the next pass retries
                log.exception("%s pass failed; retrying in %.1f s", name, interval)
            await asyncio.sleep(interval)

    loop.__name__ = loop.__qualname__ = name  # the task's name, as probes and tests see it
    return loop
