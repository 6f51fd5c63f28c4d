"""The health score of a community over a window, from the measures' rows."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_metrics.funnels.models import Contribution, MemberMilestone
from hearth_metrics.health import formula
from hearth_metrics.health.models import HealthPart, HealthScore
from hearth_metrics.measures.service import (
    activity_measures,
    content_measures,
    moderation_measures,
)

Floor = Callable[[int], tuple[int | None, str | None]]

EXPLAINED = {
    "activity": "active contributors / members, full at 20 %",
    "responsiveness": (
        "1/2 answered share + 1/2 speed of the median first response (1 h -> 1, 72 h -> 0)"
    ),
    "growth": "0.5 + 0.5 x relative change of new members against the window before",
    "conversion": "new members who contributed / new members, full at 30 %",
    "events": "1/2 attendance rate + 1/2 (NPS + 100) / 200",
    "safety": "1 - reports per contribution / 0.1",
}
PEOPLE = ("members", "active_contributors", "new_members", "new_members_before", "new_contributors")


async def _count(session: AsyncSession, *where: Any) -> int:
    return int((await session.execute(select(func.count()).where(*where))).scalar_one())


async def health_inputs(
    session: AsyncSession, *, community_id: uuid.UUID, since: datetime, until: datetime
) -> formula.Inputs:
    """The formula's inputs for the window [since, until) (the window before for growth)."""
    m: Any = MemberMilestone
    c: Any = Contribution
    before = since - (until - since)
    in_window = (m.joined_at >= since) & (m.joined_at < until)
    members = await _count(
        session, m.community_id == community_id, m.joined_at.is_not(None), m.joined_at < until
    )
    new_members = await _count(session, m.community_id == community_id, in_window)
    new_before = await _count(
        session, m.community_id == community_id, m.joined_at >= before, m.joined_at < since
    )
    new_contributors = await _count(
        session,
        m.community_id == community_id,
        in_window,
        m.contributed_at.is_not(None),
        m.contributed_at < until,
    )
    window = (c.community_id == community_id) & (c.at >= since) & (c.at < until)
    active, contributions = (
        await session.execute(
            select(func.count(func.distinct(c.user_id)), func.count()).where(window)
        )
    ).one()
    content = await content_measures(session, community_id=community_id, since=since, until=until)
    acts = await activity_measures(
        session, community_id=community_id, since=since, until=until, floor=lambda n: (n, None)
    )
    mod = await moderation_measures(session, community_id=community_id, since=since, until=until)
    return formula.Inputs(
        members=members,
        active_contributors=int(active),
        unanswered_share=content.unanswered_share,
        median_first_response_s=content.median_first_response_seconds,
        new_members=new_members,
        new_members_before=new_before,
        new_contributors=new_contributors,
        attendance_rate=acts.attendance_rate,
        nps=acts.nps,
        reports=mod.reports,
        contributions=int(contributions),
    )


def health_of(
    inputs: formula.Inputs,
    *,
    community_id: uuid.UUID,
    since: datetime,
    until: datetime,
    floor: Floor,
) -> HealthScore:
    """The score and its parts; people counts under the privacy floor suppress the score."""
    raw = asdict(inputs)
    shown: dict[str, Any] = dict(raw)
    for name in PEOPLE:
        if raw[name] is not None:
            shown[name], why = floor(raw[name])
            if why is not None and name == "members":
                return HealthScore(
                    community_id=community_id,
                    since=since,
                    until=until,
                    score=None,
                    parts=[],
                    suppressed=why,
                )
    values = {name: fn(inputs) for name, fn in formula.PARTS.items()}
    inputs_of = {
        "activity": ("members", "active_contributors"),
        "responsiveness": ("unanswered_share", "median_first_response_s"),
        "growth": ("new_members", "new_members_before"),
        "conversion": ("new_members", "new_contributors"),
        "events": ("attendance_rate", "nps"),
        "safety": ("reports", "contributions"),
    }
    hidden = any(shown[k] is None and raw[k] is not None for k in PEOPLE)
    parts = [
        HealthPart(
            name=name,
            # A part resting on a suppressed count is not shown: it would give the count back.
            value=None
            if hidden and any(shown[k] is None and raw[k] is not None for k in inputs_of[name])
            else (round(v, 4) if v is not None else None),
            weight=formula.WEIGHTS[name],
            inputs={k: shown[k] for k in inputs_of[name]},
            explanation=EXPLAINED[name],
        )
        for name, v in values.items()
    ]
    return HealthScore(
        community_id=community_id,
        since=since,
        until=until,
        score=formula.score(values),
        parts=parts,
    )
