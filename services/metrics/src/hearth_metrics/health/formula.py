"""The health formula: pure functions from measures to parts and the score (unit tested).

Inspired by CHAOSS metrics: Contributors / Active Contributors (activity), Time to First
Response (responsiveness), New Contributors and member growth (growth), Conversion (visitor ->
contributor path), Event attendance and satisfaction (events), Code of Conduct enforcement
(safety). Each part maps to 0-1; the score is 100 x Σ wᵢ·pᵢ / Σ wᵢ over parts with data.
"""

from __future__ import annotations

from dataclasses import dataclass

WEIGHTS = {
    "activity": 25.0,
    "responsiveness": 20.0,
    "growth": 15.0,
    "conversion": 15.0,
    "events": 15.0,
    "safety": 10.0,
}
ACTIVE_SHARE_FULL = 0.2  # 20 % of members contributing in the window scores 1
FAST_RESPONSE_S = 3600.0  # a median first response within an hour scores 1 ...
SLOW_RESPONSE_S = 72 * 3600.0  # ... falling linearly to 0 at three days
CONVERSION_FULL = 0.3  # 30 % of new members contributing in the window scores 1
REPORTS_ZERO = 0.1  # one report per ten contributions scores 0


def clamp(x: float, low: float = 0.0, high: float = 1.0) -> float:
    """x limited to [low, high]."""
    return max(low, min(high, x))


@dataclass(frozen=True)
class Inputs:
    """What the formula reads (None: no data for that input)."""

    members: int | None
    active_contributors: int | None
    unanswered_share: float | None
    median_first_response_s: float | None
    new_members: int | None
    new_members_before: int | None
    new_contributors: int | None
    attendance_rate: float | None
    nps: float | None
    reports: int | None
    contributions: int | None


def activity(i: Inputs) -> float | None:
    """Active contributors over members, full at ACTIVE_SHARE_FULL."""
    if not i.members or i.active_contributors is None:
        return None
    return clamp(i.active_contributors / i.members / ACTIVE_SHARE_FULL)


def responsiveness(i: Inputs) -> float | None:
    """Half the answered share, half the speed of the median first response."""
    if i.unanswered_share is None:
        return None
    answered = 1.0 - i.unanswered_share
    if i.median_first_response_s is None:
        return answered / 2
    speed = 1.0 - clamp(
        (i.median_first_response_s - FAST_RESPONSE_S) / (SLOW_RESPONSE_S - FAST_RESPONSE_S)
    )
    return 0.5 * answered + 0.5 * speed


def growth(i: Inputs) -> float | None:
    """0.5 at a flat intake, 1 at double the previous window's new members, 0 at none."""
    if i.new_members is None or i.new_members_before is None:
        return None
    if i.new_members_before == 0:
        return 1.0 if i.new_members > 0 else None
    ratio = (i.new_members - i.new_members_before) / i.new_members_before
    return clamp(0.5 + 0.5 * ratio)


def conversion(i: Inputs) -> float | None:
    """New members who contributed over new members, full at CONVERSION_FULL."""
    if not i.new_members or i.new_contributors is None:
        return None
    return clamp(i.new_contributors / i.new_members / CONVERSION_FULL)


def events(i: Inputs) -> float | None:
    """The attendance rate, averaged with NPS mapped to 0-1 when there is feedback."""
    if i.attendance_rate is None:
        return None
    if i.nps is None:
        return clamp(i.attendance_rate)
    return clamp(0.5 * i.attendance_rate + 0.5 * (i.nps + 100.0) / 200.0)


def safety(i: Inputs) -> float | None:
    """1 without reports, 0 at REPORTS_ZERO reports per contribution."""
    if not i.contributions or i.reports is None:
        return None
    return clamp(1.0 - i.reports / i.contributions / REPORTS_ZERO)


PARTS = {
    "activity": activity,
    "responsiveness": responsiveness,
    "growth": growth,
    "conversion": conversion,
    "events": events,
    "safety": safety,
}


def score(values: dict[str, float | None]) -> float | None:
    """100 x the weighted mean of the parts with a value (None when none has one)."""
    present = {k: v for k, v in values.items() if v is not None}
    if not present:
        return None
    total = sum(WEIGHTS[k] for k in present)
    return round(100.0 * sum(WEIGHTS[k] * v for k, v in present.items()) / total, 2)
