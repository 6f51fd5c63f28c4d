"""Comparison, trend, correlation and the health formula, against hand-computed values."""

from __future__ import annotations

import math
from datetime import date

import pytest

from hearth_metrics.analysis.series import (
    compare,
    lagged,
    next_period,
    pearson,
    period_start,
    previous_period,
    totals_by_period,
    trend,
)
from hearth_metrics.health import formula


def test_periods_start_on_monday_the_first_and_the_quarter() -> None:
    d = date(2026, 5, 14)  # a Thursday
    assert period_start(d, "week") == date(2026, 5, 11)
    assert period_start(d, "month") == date(2026, 5, 1)
    assert period_start(d, "quarter") == date(2026, 4, 1)
    assert next_period(date(2026, 11, 1), "quarter") == date(2027, 2, 1)
    assert next_period(date(2026, 10, 1), "quarter") == date(2027, 1, 1)
    assert next_period(date(2026, 12, 1), "month") == date(2027, 1, 1)
    assert previous_period(date(2026, 1, 1), "quarter") == date(2025, 10, 1)
    assert previous_period(date(2026, 5, 11), "week") == date(2026, 5, 4)


def test_period_over_period() -> None:
    c = compare(15, 10)
    assert (c.change, c.change_ratio) == (5, 0.5)
    assert compare(3, 0).change_ratio is None
    weekly = totals_by_period(
        {date(2026, 5, 11): 1, date(2026, 5, 17): 2, date(2026, 5, 18): 4}, "week"
    )
    assert weekly == {date(2026, 5, 11): 3.0, date(2026, 5, 18): 4.0}


def test_trend_is_the_least_squares_line() -> None:
    # y = 1, 3, 2, 5 at x = 0..3: mean x 1.5, mean y 2.75; Sxy = 5.5, Sxx = 5 -> slope 1.1,
    # intercept 2.75 - 1.1 * 1.5 = 1.1.
    t = trend([1, 3, 2, 5])
    assert t.n == 4
    assert t.slope == pytest.approx(1.1) and t.intercept == pytest.approx(1.1)
    assert trend([4.0]).slope is None
    assert trend([2, 2, 2], xs=[1, 1, 1]).slope is None
    assert trend([0, 2, 4], xs=[0, 1, 2]).slope == pytest.approx(2.0)


def test_pearson_with_its_number_of_points() -> None:
    # x = 1..5, y = 2, 4, 5, 4, 5: Sxy = 6, Sxx = 10, Syy = 6 -> r = 6 / sqrt(60).
    c = pearson([1, 2, 3, 4, 5], [2, 4, 5, 4, 5])
    assert c.n == 5 and c.r == pytest.approx(6 / math.sqrt(60))
    assert pearson([1, 2, 3], [3, 2, 1]).r == pytest.approx(-1.0)
    assert pearson([1, 2], [1, 2]).r is None  # too few points
    assert pearson([1, 1, 1], [1, 2, 3]).r is None  # constant
    with pytest.raises(ValueError):
        pearson([1, 2, 3], [1, 2])
    xs, ys = lagged({date(2026, 5, 1): 2, date(2026, 5, 2): 0}, {date(2026, 5, 8): 7}, lag_days=7)
    assert (xs, ys) == ([2, 0], [7, 0.0])


def inputs(**over: object) -> formula.Inputs:
    base: dict[str, object] = {
        "members": 100,
        "active_contributors": 10,
        "unanswered_share": 0.2,
        "median_first_response_s": 3600.0,
        "new_members": 12,
        "new_members_before": 8,
        "new_contributors": 3,
        "attendance_rate": 0.6,
        "nps": 20.0,
        "reports": 2,
        "contributions": 100,
    }
    return formula.Inputs(**(base | over))  # type: ignore[arg-type]


def test_health_parts_and_score_by_hand() -> None:
    i = inputs()
    assert formula.activity(i) == pytest.approx(0.5)  # 10 % of members, full at 20 %
    assert formula.responsiveness(i) == pytest.approx(0.5 * 0.8 + 0.5 * 1.0)
    assert formula.growth(i) == pytest.approx(0.75)  # +50 %
    assert formula.conversion(i) == pytest.approx(3 / 12 / 0.3)
    assert formula.events(i) == pytest.approx(0.5 * 0.6 + 0.5 * 0.6)
    assert formula.safety(i) == pytest.approx(0.8)  # 2 % reports, zero at 10 %
    values = {name: fn(i) for name, fn in formula.PARTS.items()}
    weighted = (25 * 0.5 + 20 * 0.9 + 15 * 0.75 + 15 * (3 / 12 / 0.3) + 15 * 0.6 + 10 * 0.8) / 100
    assert formula.score(values) == round(100 * weighted, 2)
    # Parts without data are left out and the weights renormalised.
    sparse = inputs(attendance_rate=None, contributions=0)
    values = {name: fn(sparse) for name, fn in formula.PARTS.items()}
    assert values["events"] is None and values["safety"] is None
    kept = 25 * 0.5 + 20 * 0.9 + 15 * 0.75 + 15 * (3 / 12 / 0.3)
    assert formula.score(values) == round(100 * kept / 75, 2)
    assert formula.score(dict.fromkeys(formula.PARTS)) is None
    # Slow answers score 0 speed; growth is clamped.
    slow = inputs(median_first_response_s=100 * 3600.0, new_members=40)
    assert formula.responsiveness(slow) == pytest.approx(0.4)
    assert formula.growth(slow) == 1.0
