"""Periodic background work (schedulers) for `ServiceDefinition.background`.

Every scheduler of every service has the same shape: run one pass, say what it did, survive a
failing pass, wait, again. The passes themselves must be safe on several replicas (they claim
rows with `FOR UPDATE SKIP LOCKED` or a lease); this loop only paces them. A loop given `wake`
also runs a pass as soon as that event is set (e.g. after a commit that created work), so the
interval only bounds how late work found by polling can be.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from servicekit.runtime import ServiceRuntime

log = logging.getLogger(__name__)

Pass = Callable[[ServiceRuntime], Awaitable[str | None]]
"""One scheduler pass: returns a summary to log when it did something, else None."""
Wake = Callable[[ServiceRuntime], asyncio.Event]
"""The event that starts the next pass early (looked up once, when the loop starts)."""
Interval = Callable[[ServiceRuntime], float]
"""The seconds between passes, read from typed settings: `lambda rt: settings_of(rt, S).x`."""


def periodic(
    name: str,
    run_pass: Pass,
    *,
    interval: Interval,
    wake: Wake | None = None,
) -> Callable[[ServiceRuntime], Awaitable[None]]:
    """A background loop named `name` running `run_pass` every `interval(runtime)` seconds."""

    async def loop(runtime: ServiceRuntime) -> None:
        seconds = float(interval(runtime))
        woken = wake(runtime) if wake is not None else None
        while True:
            if woken is not None:
                # Cleared before the pass, so a wake that arrives during it runs another one.
                woken.clear()
            try:
                summary = await run_pass(runtime)
                if summary:
                    log.info("%s: %s", name, summary)
            except asyncio.CancelledError:
                raise
            except Exception:  # keep the loop alive; the next pass retries
                log.exception("%s pass failed; retrying in %.1f s", name, seconds)
            if woken is None:
                await asyncio.sleep(seconds)
            else:
                try:
                    await asyncio.wait_for(woken.wait(), timeout=seconds)
                except TimeoutError:
                    pass

    loop.__name__ = loop.__qualname__ = name  # the task's name, as probes and tests see it
    return loop
