"""Issue 15's load test, short: a fixed-arrival-rate mixed workload through the gateway.

The same code as `make bench BENCH=load` (bench/mixed_load.py), on the session's platform,
for HEARTH_LOAD_SECONDS (default 12) at HEARTH_LOAD_RATE requests per second (default 20):
no request fails, every acknowledged write's effect is in the consuming contexts exactly once
(the ledger, read back through the gateway), and the consumers' lag is back to 0 within 10 s
of the load stopping. The figures are printed (-s shows them) with the load average.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from servicekit.testing.platform import Platform

pytestmark = pytest.mark.timeout(180)


def _bench_module() -> ModuleType:
    path = Path(__file__).parents[1] / "bench" / "mixed_load.py"
    spec = importlib.util.spec_from_file_location("mixed_load", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["mixed_load"] = module  # dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


mixed_load = _bench_module()


async def test_mixed_load_at_a_fixed_rate_loses_nothing_and_the_lag_drains(
    platform: Platform,
) -> None:
    cfg = mixed_load.LoadConfig.from_env(
        "HEARTH_LOAD_", rate=20.0, seconds=12.0, users=8, seed_posts=10, activities=4
    )
    result = await mixed_load.run(platform.gateway, platform.nats_url, platform.subject_prefix, cfg)
    print("\n" + result.summary())
    assert result.sent == int(cfg.rate * cfg.seconds)
    assert not result.errors, result.errors
    assert result.error_rate == 0
    # Writes of every kind were in the mix, so the ledger check covered each consumer.
    assert all(n > 0 for n in result.ledger.values()), result.ledger
    assert not result.problems, result.summary()
    assert result.lag_drain_seconds is not None
    assert result.lag_drain_seconds <= mixed_load.LAG_LIMIT
