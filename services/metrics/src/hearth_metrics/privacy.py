"""The privacy floor of internal (employee) communities: k-anonymity on every published figure.

Rule: in a community whose kind is `internal`, a figure that rests on fewer than k people
(default 5, `MetricsSettings.privacy_k`, per community `CommunityPolicy.k_floor`) is returned as
`null` with a reason, never as a small count; per-person rankings (leaderboards, top
contributors) are refused unless the community enables them. Other communities pass unchanged.

Differencing. Two overlapping queries must not let anyone subtract their way to a suppressed
person. Four rules make every answer a union of the same fixed, disjoint cells:

1. Fixed buckets only. On an internal community every range snaps outward to whole buckets of
   the community's time zone (`aligned`: days, ISO weeks starting Monday, calendar months), and
   window measures (WAU, MAU) are the calendar week / month, never a rolling window ending on an
   arbitrary day. So two queries either return the same cell (the same value, suppressed the
   same way) or disjoint cells; "Jan 1-31 minus Jan 2-31" does not exist as a pair of answers.
2. Small cells are suppressed (`guard`): a cell over fewer than k people is null.
3. Complementary cells are suppressed (`guard_parts`): when parts of a published whole (e.g.
   retention split by invite channel, whose cohort total is published) leave exactly one part
   suppressed, the whole minus the others would reveal it, so the smallest other part is
   suppressed too, and so on until no suppressed part is alone.
4. Both sides of a share (`guard_share`): a rate such as D30 retention reveals the people in it
   and the people not in it, so it is shown only when both number at least k.

A figure is a `Figure` (`value`, `suppressed`); metrics-biz calls the same functions on its own
figures (conversions, funnels, content measures), passing the number of distinct people each
rests on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal, TypeVar

from pydantic import BaseModel

from hearth_metrics.communities.service import Policy
from servicekit.problems import Problem

Grain = Literal["day", "week", "month"]
K = TypeVar("K")

SMALL = "fewer than {k} people"
COMPLEMENT = "would reveal a suppressed group by subtraction"
SHARE = "fewer than {k} people on one side of the share"


@dataclass(frozen=True)
class Floor:
    """Whether the floor applies to a community, its k, and whether rankings are enabled."""

    applies: bool
    k: int
    rankings: bool

    @classmethod
    def of(cls, policy: Policy) -> Floor:
        """The floor of a community's effective policy."""
        return cls(applies=policy.internal, k=policy.k_floor, rankings=policy.rankings_enabled)


OPEN = Floor(applies=False, k=1, rankings=True)
"""No floor (non-internal communities)."""


class Figure(BaseModel):
    """One published number: `value`, or null with the reason it is suppressed."""

    value: float | None
    suppressed: str | None = None


def guard(value: float | None, *, people: int, floor: Floor) -> Figure:
    """The figure unless it rests on fewer than k people in a community with the floor."""
    if floor.applies and people < floor.k:
        return Figure(value=None, suppressed=SMALL.format(k=floor.k))
    return Figure(value=value)


def guard_share(value: float | None, *, part: int, whole: int, floor: Floor) -> Figure:
    """A share of people (`part` of `whole`): shown only when part and whole - part are ≥ k."""
    if floor.applies and whole < floor.k:
        return Figure(value=None, suppressed=SMALL.format(k=floor.k))
    if floor.applies and min(part, whole - part) < floor.k:
        return Figure(value=None, suppressed=SHARE.format(k=floor.k))
    return Figure(value=value)


def guard_parts(
    parts: Mapping[K, tuple[float | None, int]], *, floor: Floor, whole_published: bool = True
) -> dict[K, Figure]:
    """Parts of one whole as (value, people): small parts and their complements suppressed.

    With `whole_published` (the total of the parts is shown elsewhere), a lone suppressed part
    could be recovered by subtraction; the smallest unsuppressed part is then suppressed too.
    """
    out = {key: guard(value, people=people, floor=floor) for key, (value, people) in parts.items()}
    if not floor.applies or not whole_published:
        return out
    hidden = [key for key, fig in out.items() if fig.suppressed]
    if len(hidden) == 1:
        shown = sorted(
            (people, str(key), key) for key, (_, people) in parts.items() if key not in hidden
        )
        if shown:
            key = shown[0][2]
            out[key] = Figure(value=None, suppressed=COMPLEMENT)
    return out


def require_rankings(floor: Floor) -> None:
    """Refuse a per-person ranking (403) in a community with the floor and rankings disabled."""
    if floor.applies and not floor.rankings:
        raise Problem(
            403,
            "rankings-disabled",
            "Forbidden",
            "per-person rankings are off in this internal community (enable them in its policy)",
        )


def aligned(start: date, end: date, *, grain: Grain) -> tuple[date, date]:
    """The range widened to whole buckets: [first day of start's bucket, last day of end's]."""
    if grain == "day":
        return start, end
    if grain == "week":
        return start - timedelta(days=start.weekday()), end + timedelta(days=6 - end.weekday())
    first = start.replace(day=1)
    following = (end.replace(day=1) + timedelta(days=32)).replace(day=1)
    return first, following - timedelta(days=1)
