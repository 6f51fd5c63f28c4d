"""Small kernel guarantees: SQLite tuning, CI rules for tests, stream replicas from settings."""

from __future__ import annotations

from pathlib import Path

import pytest

import kitapp
from servicekit.db import Database
from servicekit.runtime import ServiceRuntime
from servicekit.testing.backends import free_port, resolve_backends
from servicekit.testing.plugin import unavailable


async def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'tuned.db'}")
    try:
        async with db.engine.connect() as conn:

            async def pragma(name: str) -> object:
                return (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar_one()

            assert str(await pragma("journal_mode")).lower() == "wal"
            assert await pragma("foreign_keys") == 1
            busy = await pragma("busy_timeout")
            assert isinstance(busy, int) and busy > 0
        # A connection opened after the pool was emptied is tuned too (the connect hook).
        await db.engine.dispose()
        async with db.engine.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar_one() == 1
            assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar_one() > 0
    finally:
        await db.dispose()


@pytest.mark.parametrize("ci", ["true", ""])
def test_a_postgresql_url_that_does_not_answer_is_refused_not_replaced(
    monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    # A fresh resolution with its own environment; the session's backends are left alone.
    monkeypatch.setenv("CI", ci)
    monkeypatch.setenv("HEARTH_TEST_DB", "sqlite")  # even then, no SQLite stand-in
    monkeypatch.setenv(
        "HEARTH_TEST_POSTGRES_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/x"
    )
    with pytest.raises(RuntimeError, match="PostgreSQL"):
        resolve_backends()


async def test_stream_replicas_setting_reaches_every_stream_the_kernel_creates(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HEARTH_STREAM_REPLICAS", "3")
    monkeypatch.setenv("HEARTH_STREAM_MAX_AGE_DAYS", "7")
    settings = kitapp.KitSettings(
        database_url=f"sqlite:///{tmp_path / 'kit.db'}",
        nats_url=f"nats://127.0.0.1:{free_port()}",  # never connects: only the configs matter
    )
    runtime = ServiceRuntime(kitapp.definition, settings)
    await runtime.start()
    try:
        (consumer,) = runtime.consumers
        for config in (runtime.relay.stream, consumer.stream_config("kittest")):
            assert config.num_replicas == 3
            assert config.max_age == 7 * 86400
            assert config.duplicate_window == 120
    finally:
        await runtime.stop()


@pytest.mark.parametrize(("ci", "outcome"), [("true", "failed"), ("", "skipped")])
def test_a_missing_prerequisite_fails_under_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch, ci: str, outcome: str
) -> None:
    monkeypatch.setenv("CI", ci)
    expected = pytest.fail.Exception if outcome == "failed" else pytest.skip.Exception
    with pytest.raises(expected, match="kubectl is not installed"):
        unavailable("kubectl is not installed")
