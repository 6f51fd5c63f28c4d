"""ServiceDefinition.background: a service's long-running loops start with it and stop with it."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import kitapp
from servicekit.runtime import ServiceRuntime
from servicekit.testing.harness import test_settings


async def test_background_loops_start_with_the_runtime_and_are_cancelled_on_stop(
    backends: Any, nats_url: str, subject_prefix: str
) -> None:
    ticks: list[int] = []
    cancelled = asyncio.Event()

    async def ticker(runtime: ServiceRuntime) -> None:
        assert runtime.definition.context == "kittest"
        try:
            while True:
                ticks.append(1)
                await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def crashes(runtime: ServiceRuntime) -> None:
        raise RuntimeError("a failing loop is logged, not fatal to the service")

    definition = dataclasses.replace(kitapp.definition, background=[ticker, crashes])
    settings = test_settings(
        definition,
        database_url=backends.database_url("kit", "sqlite"),
        nats_url=nats_url,
        subject_prefix=subject_prefix,
    )
    runtime = ServiceRuntime(definition, settings)
    await runtime.start()
    try:
        for _ in range(100):
            if len(ticks) >= 3:
                break
            await asyncio.sleep(0.01)
        assert len(ticks) >= 3
    finally:
        await runtime.stop()
    assert cancelled.is_set()
    settled = len(ticks)
    await asyncio.sleep(0.05)
    assert len(ticks) == settled  # nothing runs after stop()
