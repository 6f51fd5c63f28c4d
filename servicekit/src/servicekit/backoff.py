"""Retry delays: exponential from a base, capped, with jitter, for every retry loop in Hearth."""

from __future__ import annotations

import random
from collections.abc import Callable

# 2**62 times any sane base is far past every cap, and still a finite float.
_MAX_EXPONENT = 62


def ceiling(attempt: int, *, base: float, cap: float) -> float:
    """`base * 2^(attempt-1)`, capped: the delay before jitter after `attempt` failures."""
    return min(cap, base * 2 ** min(max(attempt - 1, 0), _MAX_EXPONENT))


def delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    low: float = 0.0,
    high: float = 1.0,
    rand: Callable[[], float] | None = None,
) -> float:
    """Seconds to wait after `attempt` failures: the ceiling times a uniform factor in
    [low, high].

    The default (0, 1) is full jitter: retries of many clients spread over the whole window.
    `low=0.5` never retries at once (half fixed, half random); `low=high=1` is no jitter (a
    loop alone on its lease). `rand` (a [0, 1) source) makes tests deterministic.
    """
    span = ceiling(attempt, base=base, cap=cap)
    if rand is None:
        return span * random.uniform(low, high)  # noqa: S311 - jitter, not a secret
    return span * (low + (high - low) * rand())
