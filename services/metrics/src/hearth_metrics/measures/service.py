"""Content, activity and moderation measures over the fact rows (never over raw events)."""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_metrics.measures.models import (
    Activity,
    ActivityAttendee,
    ActivityFigures,
    ActivityMeasures,
    ColumnFigures,
    ContentItem,
    ContentMeasures,
    ModerationItem,
    ModerationMeasures,
    PostStats,
)

Floor = Callable[[int], tuple[int | None, str | None]]
"""The privacy floor of a community: a count of people, or (None, reason) when too few."""


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return (later - earlier).total_seconds()


def _median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


async def content_measures(
    session: AsyncSession,
    *,
    community_id: uuid.UUID,
    since: datetime,
    until: datetime,
    top: int = 10,
) -> ContentMeasures:
    """Posts published in the range: totals, per column, the top posts and responsiveness.

    Time to first response: from publication to the first comment by someone other than the
    author; unanswered share: posts without such a comment over all posts of the range.
    """
    p: Any = PostStats
    where = [p.community_id == community_id, p.published_at >= since, p.published_at < until]
    rows = (await session.execute(select(p).where(*where))).scalars().all()
    columns: dict[uuid.UUID | None, ColumnFigures] = {}
    waits: list[float] = []
    for r in rows:
        col = columns.setdefault(
            r.column_id,
            ColumnFigures(
                column_id=r.column_id, posts=0, reads=0, reactions=0, comments=0, shares=0
            ),
        )
        col.posts += 1
        col.reads += r.reads
        col.reactions += r.reactions
        col.comments += r.comments
        col.shares += r.shares
        wait = _seconds(r.first_response_at, r.published_at)
        if wait is not None:
            waits.append(max(wait, 0.0))
    ranked = sorted(
        rows,
        key=lambda r: (
            -(r.reads + 3 * r.reactions + 5 * r.comments + 8 * r.shares),
            str(r.post_id),
        ),
    )
    items = [
        ContentItem(
            post_id=r.post_id,
            column_id=r.column_id,
            title=r.title,
            published_at=r.published_at,
            reads=r.reads,
            reactions=r.reactions,
            comments=r.comments,
            shares=r.shares,
            first_response_seconds=_seconds(r.first_response_at, r.published_at),
        )
        for r in ranked[:top]
    ]
    n = len(rows)
    return ContentMeasures(
        community_id=community_id,
        since=since,
        until=until,
        posts=n,
        reads=sum(r.reads for r in rows),
        reactions=sum(r.reactions for r in rows),
        comments=sum(r.comments for r in rows),
        shares=sum(r.shares for r in rows),
        median_first_response_seconds=_median(waits),
        unanswered_share=round((n - len(waits)) / n, 6) if n else None,
        by_column=sorted(columns.values(), key=lambda c: str(c.column_id or "")),
        top=items,
    )


def _nps(scores: list[int]) -> float | None:
    if not scores:
        return None
    promoters = sum(1 for s in scores if s >= 9)
    detractors = sum(1 for s in scores if s <= 6)
    return round(100.0 * (promoters - detractors) / len(scores), 2)


def _mean(values: list[int]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _registered(a: ActivityAttendee) -> bool:
    """Registered and not cancelled since (a later registration undoes a cancellation)."""
    if a.registered_at is None:
        return False
    return a.cancelled_at is None or a.cancelled_at < a.registered_at or a.checked_in_at is not None


def _figures(
    activity: Activity, people: list[ActivityAttendee], floor: Floor
) -> tuple[ActivityFigures, dict[str, Any]]:
    registered = [a for a in people if _registered(a)]
    attended = [a for a in people if a.checked_in_at is not None]
    no_shows = [a for a in people if a.no_show_at is not None and a.checked_in_at is None]
    sat = [a.satisfaction for a in people if a.satisfaction is not None]
    nps = [a.nps for a in people if a.nps is not None]
    raw = {
        "registered": registered,
        "attended": attended,
        "no_shows": no_shows,
        "sat": sat,
        "nps": nps,
    }
    shown, why = floor(len(registered))
    if why is not None:
        return (
            ActivityFigures(
                activity_id=activity.activity_id,
                title=activity.title,
                starts_at=activity.starts_at,
                registrations=None,
                attended=None,
                no_shows=None,
                attendance_rate=None,
                satisfaction=None,
                nps=None,
                feedback=None,
                suppressed=why,
            ),
            raw,
        )
    rate = round(len(attended) / len(registered), 6) if registered else None
    return (
        ActivityFigures(
            activity_id=activity.activity_id,
            title=activity.title,
            starts_at=activity.starts_at,
            registrations=shown,
            attended=len(attended),
            no_shows=len(no_shows),
            attendance_rate=rate,
            satisfaction=_mean(sat),
            nps=_nps(nps),
            feedback=len(set(a.user_id for a in people if a.feedback_at is not None)),
        ),
        raw,
    )


async def activity_measures(
    session: AsyncSession,
    *,
    community_id: uuid.UUID,
    since: datetime,
    until: datetime,
    floor: Floor,
) -> ActivityMeasures:
    """Activities starting in the range: registrations, attendance, no-shows, satisfaction, NPS.

    Per activity and in total; an activity with fewer registrants than the floor shows nulls,
    and the totals are suppressed when the range as a whole is under the floor.
    """
    a: Any = Activity
    activities = (
        (
            await session.execute(
                select(a)
                .where(a.community_id == community_id, a.starts_at >= since, a.starts_at < until)
                .order_by(a.starts_at, a.activity_id)
            )
        )
        .scalars()
        .all()
    )
    ids = [x.activity_id for x in activities]
    people: dict[uuid.UUID, list[ActivityAttendee]] = {i: [] for i in ids}
    if ids:
        t: Any = ActivityAttendee
        for row in (await session.execute(select(t).where(t.activity_id.in_(ids)))).scalars():
            people[row.activity_id].append(row)
    items = []
    totals: dict[str, list[Any]] = {
        "registered": [],
        "attended": [],
        "no_shows": [],
        "sat": [],
        "nps": [],
    }
    for x in activities:
        fig, raw = _figures(x, people[x.activity_id], floor)
        items.append(fig)
        for k, v in raw.items():
            totals[k].extend(v)
    registered = len(totals["registered"])
    distinct = len({p.user_id for p in totals["registered"]})
    _, why = floor(distinct)
    if why is not None and activities:
        return ActivityMeasures(
            community_id=community_id,
            since=since,
            until=until,
            activities=len(activities),
            registrations=None,
            attended=None,
            no_shows=None,
            attendance_rate=None,
            satisfaction=None,
            nps=None,
            items=items,
            suppressed=why,
        )
    attended = len(totals["attended"])
    return ActivityMeasures(
        community_id=community_id,
        since=since,
        until=until,
        activities=len(activities),
        registrations=registered,
        attended=attended,
        no_shows=len(totals["no_shows"]),
        attendance_rate=round(attended / registered, 6) if registered else None,
        satisfaction=_mean(totals["sat"]),
        nps=_nps(totals["nps"]),
        items=items,
    )


async def moderation_measures(
    session: AsyncSession, *, community_id: uuid.UUID, since: datetime, until: datetime
) -> ModerationMeasures:
    """Reports, time to action, sanctions, appeals and outcomes, sentiment alerts in the range."""
    m: Any = ModerationItem
    rows = (
        (
            await session.execute(
                select(m).where(
                    m.community_id == community_id, m.opened_at >= since, m.opened_at < until
                )
            )
        )
        .scalars()
        .all()
    )

    def of(kind: str) -> list[ModerationItem]:
        return [r for r in rows if r.kind == kind]

    def outcomes(items: list[ModerationItem]) -> dict[str, int]:
        found: dict[str, int] = {}
        for r in items:
            if r.outcome:
                found[r.outcome] = found.get(r.outcome, 0) + 1
        return dict(sorted(found.items()))

    reports, appeals = of("report"), of("appeal")
    acted = [r for r in reports if r.closed_at is not None]
    waits = [max(_seconds(r.closed_at, r.opened_at) or 0.0, 0.0) for r in acted]
    levels: dict[str, int] = {}
    for r in of("sanction"):
        levels[r.level or "unknown"] = levels.get(r.level or "unknown", 0) + 1
    return ModerationMeasures(
        community_id=community_id,
        since=since,
        until=until,
        reports=len(reports),
        reports_actioned=len(acted),
        median_time_to_action_seconds=_median(waits),
        report_outcomes=outcomes(reports),
        sanctions=len(of("sanction")),
        sanctions_by_level=dict(sorted(levels.items())),
        appeals=len(appeals),
        appeals_decided=sum(1 for r in appeals if r.closed_at is not None),
        appeal_outcomes=outcomes(appeals),
        sentiment_alerts=len(of("sentiment")),
    )
