"""Moderation tests run the real service (its own database, real NATS), with others when needed.

`launch`, `broker` and `stream_events` come from the servicekit pytest plugin.
"""

from __future__ import annotations

import pytest

from hearth_moderation.app import definition
from servicekit.testing.harness import RunningService
from servicekit.testing.plugin import Launch


@pytest.fixture
async def moderation(launch: Launch) -> RunningService:
    """A running moderation service with the default banned terms."""
    return await launch(definition)
