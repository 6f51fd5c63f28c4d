"""Stateful tests: Hypothesis state machines against real services (servicekit.testing.stateful)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from servicekit.testing.backends import Backends
from servicekit.testing.harness import Identities
from servicekit.testing.stateful import Stage


@pytest.fixture(scope="module")
def stage(backends: Backends, identities: Identities) -> Iterator[Stage]:
    """This module's loop, prefix and services (stopped at the module's end)."""
    running = Stage(backends, identities)
    yield running
    running.close()
