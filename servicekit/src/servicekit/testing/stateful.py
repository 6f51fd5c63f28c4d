"""Stateful tests drive real services (real database, real NATS) from Hypothesis' sync rules.

Hypothesis' `RuleBasedStateMachine` calls plain functions; the services are async. So each test
module owns one event loop on a thread of its own (`Loop`): the service is started there once
(the harness' `running_service`, as `launch` does) and every rule runs its HTTP calls on that
loop with `loop.run(coro)`. Each Hypothesis example works on fresh ids (a new activity, a new
member), so the examples share one running service without seeing each other.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from typing import Any, TypeVar

from servicekit.testing.backends import Backends
from servicekit.testing.harness import (
    Broker,
    Identities,
    RunningService,
    running_service,
    test_settings,
)

T = TypeVar("T")


class Loop:
    """An event loop on its own thread; `run(coro)` runs a coroutine there and waits for it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.stack = AsyncExitStack()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run `coro` on the loop and return its result (its exception propagates)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        """Stop what was started on the loop, then the loop and its thread."""
        self.run(self.stack.aclose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class Stage:
    """One module's services, started on its own loop, with a broker on the same prefix."""

    def __init__(self, backends: Backends, identities: Identities) -> None:
        assert backends.nats_url
        self.nats_url: str = backends.nats_url
        self.backends = backends
        self.identities = identities
        self.prefix = "s" + uuid.uuid4().hex[:12]
        self.loop = Loop()
        self.nc: Any = None
        self.broker: Broker | None = None

    def start(self, definition: Any, **values: Any) -> RunningService:
        """Migrate and start one service on a fresh database of the primary backend."""
        settings = test_settings(
            definition,
            database_url=self.backends.database_url(definition.context),
            nats_url=self.nats_url,
            subject_prefix=self.prefix,
            identity_public_key=self.identities.public_pem,
            **values,
        )
        return self.loop.run(
            self.loop.stack.enter_async_context(running_service(definition, settings)), 180
        )

    def publisher(self) -> Broker:
        """A broker publishing on this stage's prefix (as other contexts' relays would)."""
        if self.broker is None:
            import nats

            async def connect() -> Any:
                return await nats.connect(self.nats_url)

            self.nc = self.loop.run(connect())
            self.broker = Broker(self.nc, self.prefix)
        return self.broker

    def close(self) -> None:
        """Stop the services, drop this prefix's streams, close the loop."""
        import nats

        async def drop() -> None:
            nc = self.nc or await nats.connect(self.nats_url)
            try:
                js = nc.jetstream()
                for info in await js.streams_info():
                    name = info.config.name or ""
                    if name.startswith(self.prefix.upper() + "_"):
                        await js.delete_stream(name)
            finally:
                await nc.close()

        try:
            self.loop.run(self.loop.stack.aclose())
            self.loop.stack = AsyncExitStack()
            self.loop.run(drop())
        finally:
            self.loop.close()


def bounded(examples: int, steps: int) -> Any:
    """Hypothesis settings for one state machine: bounded for CI, deeper on demand.

    `HEARTH_STATEFUL_SCALE=10` runs ten times the examples (a longer local hunt); no example
    database is written (CI runs in a fresh clone; a failure prints its reproduction).
    """
    from hypothesis import HealthCheck, settings

    scale = max(1, int(os.environ.get("HEARTH_STATEFUL_SCALE", "1")))
    return settings(
        max_examples=examples * scale,
        stateful_step_count=steps,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
