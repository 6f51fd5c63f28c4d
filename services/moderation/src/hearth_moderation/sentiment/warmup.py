"""Loading the sentiment lexicons when the service starts, in a thread, not on the first post."""

from __future__ import annotations

import asyncio

from hearth_moderation.sentiment import scoring
from servicekit.runtime import ServiceRuntime


async def sentiment_warm_up(runtime: ServiceRuntime) -> None:
    """Load VADER's and pysenti's lexicons once (a one-shot background task)."""
    await asyncio.to_thread(scoring.warm_up)
