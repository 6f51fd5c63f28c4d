"""Cross-service tests: the whole platform as real processes, through the gateway."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from servicekit.testing.backends import Backends, run_sync
from servicekit.testing.platform import CONTEXTS, Platform


@pytest.fixture(scope="session")
def platform(backends: Backends, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """Gateway + five services + NATS + one fresh database per service (primary backend)."""
    assert backends.nats_url
    prefix = "e" + uuid.uuid4().hex[:10]
    running = Platform(
        workdir=Path(tmp_path_factory.mktemp("platform")),
        nats_url=backends.nats_url,
        subject_prefix=prefix,
        database_urls={c: backends.database_url(c) for c in CONTEXTS},
        # The schedulers pass often, so calendar slots and reminders show within a test.
        extra_env={
            "HEARTH_CONTENT_PUBLISH_TICK_SECONDS": "0.5",
            "HEARTH_EVENTS_REMINDER_TICK_SECONDS": "0.5",
        },
    ).start(timeout=180)  # six processes migrating at once on 2 cores can take a while
    yield running
    running.stop()
    run_sync(_drop_streams(backends.nats_url, prefix))


async def _drop_streams(url: str, prefix: str) -> None:
    import nats

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for info in await js.streams_info():
            if info.config.name and info.config.name.startswith(prefix.upper() + "_"):
                await js.delete_stream(info.config.name)
    finally:
        await nc.close()
    await asyncio.sleep(0)
