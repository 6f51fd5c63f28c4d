"""Kernel tests: a real ServiceRuntime (database + NATS) around the tiny kit service."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

import kitapp
from servicekit.runtime import ServiceRuntime
from servicekit.testing.harness import test_settings


@asynccontextmanager
async def kit_runtime(
    database_url: str, nats_url: str, prefix: str, **values: Any
) -> AsyncIterator[ServiceRuntime]:
    """Create the kit tables, start the runtime (relay + consumer), stop it after."""
    settings = test_settings(
        kitapp.definition,
        database_url=database_url,
        nats_url=nats_url,
        subject_prefix=prefix,
        **values,
    )
    runtime = ServiceRuntime(kitapp.definition, settings)
    async with runtime.db.engine.begin() as conn:
        await conn.run_sync(kitapp.metadata.create_all)
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


@pytest.fixture
def start_kit() -> Callable[..., Any]:
    """Factory: `async with start_kit(db_url, nats_url, prefix) as runtime:`."""
    return kit_runtime
