"""Period over period, least-squares trend and Pearson correlation over plain series.

Pure functions over `(x, y)` points or `{day: value}` series, so that reports and routes share
them and tests check them against hand-computed values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

Period = Literal["week", "month", "quarter"]


def period_start(day: date, period: Period) -> date:
    """The first day of the week (Monday), month or quarter that holds `day`."""
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def next_period(start: date, period: Period) -> date:
    """The first day of the period after the one starting at `start`."""
    if period == "week":
        return start + timedelta(days=7)
    months = 1 if period == "month" else 3
    month = start.month - 1 + months
    return date(start.year + month // 12, month % 12 + 1, 1)


def previous_period(start: date, period: Period) -> date:
    """The first day of the period before the one starting at `start`."""
    return period_start(start - timedelta(days=1), period)


@dataclass(frozen=True)
class Comparison:
    """This period's value against the one before: the difference and the relative change."""

    current: float
    previous: float
    change: float
    change_ratio: float | None  # None when the previous value is 0


def compare(current: float, previous: float) -> Comparison:
    """Period over period: `change = current - previous`, `ratio = change / previous`."""
    change = current - previous
    ratio = change / previous if previous else None
    return Comparison(current, previous, change, ratio)


def totals_by_period(series: Mapping[date, float], period: Period) -> dict[date, float]:
    """A daily series summed per period (keys: each period's first day, in order)."""
    out: dict[date, float] = {}
    for day in sorted(series):
        start = period_start(day, period)
        out[start] = out.get(start, 0.0) + series[day]
    return out


@dataclass(frozen=True)
class Trend:
    """The least-squares line `y = slope * x + intercept` and the number of points."""

    slope: float | None
    intercept: float | None
    n: int


def trend(ys: Sequence[float], xs: Sequence[float] | None = None) -> Trend:
    """Ordinary least squares over the points (x defaults to 0, 1, 2, ...)."""
    xs = list(range(len(ys))) if xs is None else list(xs)
    n = len(ys)
    if n < 2 or len(xs) != n:
        return Trend(None, None, n)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return Trend(None, None, n)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    return Trend(slope, my - slope * mx, n)


@dataclass(frozen=True)
class Correlation:
    """Pearson's r over n points (None when fewer than 3 points or a series is constant)."""

    r: float | None
    n: int


def pearson(xs: Sequence[float], ys: Sequence[float]) -> Correlation:
    """Pearson's correlation coefficient of two equally long series."""
    n = len(xs)
    if n != len(ys):
        raise ValueError("series of different lengths")
    if n < 3:
        return Correlation(None, n)
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        return Correlation(None, n)
    return Correlation(sxy / math.sqrt(sxx * syy), n)


def lagged(
    cause: Mapping[date, float], effect: Mapping[date, float], *, lag_days: int
) -> tuple[list[float], list[float]]:
    """Pairs (cause on d, effect on d + lag) for every d of `cause` (missing effect = 0)."""
    days = sorted(cause)
    return (
        [cause[d] for d in days],
        [effect.get(d + timedelta(days=lag_days), 0.0) for d in days],
    )
