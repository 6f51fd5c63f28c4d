"""Care journeys: start on a quiet-member fact, follow up when due, record the win-back."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import col, select

from hearth_members.care.events import CareNudgeSent, MemberWonBack
from hearth_members.care.models import (
    OPEN_STATUSES,
    CareJourney,
    CareSettings,
    CareSettingsUpdate,
    CareSummary,
    JourneyStatus,
    TickResult,
)
from hearth_members.communities.models import Community
from hearth_members.incentives.access import active_role, require_manager
from hearth_members.notifications import notify
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.pagination import PageParams, after_id
from servicekit.runtime import ServiceRuntime

TICK_BATCH = 100

_MESSAGES = {
    ("inactive", "first"): (
        "We miss you in {name}",
        "It has been a while. See what is new in {name}.",
    ),
    ("inactive", "follow_up"): (
        "{name} is waiting for you",
        "New posts and activities are waiting in {name}. Drop by when you can.",
    ),
    ("quiet_top_contributor", "first"): (
        "Your voice is missed in {name}",
        "You were one of {name}'s top contributors. The community would love to hear from you.",
    ),
    ("quiet_top_contributor", "follow_up"): (
        "{name} would love your take",
        "There are conversations in {name} that could use your experience.",
    ),
}


async def settings_of(uow: UnitOfWork, community_id: uuid.UUID) -> CareSettings:
    """The community's care settings, or the defaults (unsaved)."""
    found = await uow.session.get(CareSettings, community_id)
    return found or CareSettings(community_id=community_id)


async def get_settings(
    *, uow: UnitOfWork, community_id: uuid.UUID, actor: Principal
) -> CareSettings:
    """A community's care settings (managers)."""
    await require_manager(uow, community_id, actor)
    return await settings_of(uow, community_id)


async def set_settings(
    *, uow: UnitOfWork, community_id: uuid.UUID, data: CareSettingsUpdate, actor: Principal
) -> CareSettings:
    """Replace a community's care settings (managers); open journeys keep their schedule."""
    await require_manager(uow, community_id, actor)
    found = await uow.session.get(CareSettings, community_id, with_for_update=True)
    found = found or CareSettings(community_id=community_id)
    for key, value in data.model_dump().items():
        setattr(found, key, value)
    found.updated_by, found.updated_at = actor.subject, utcnow()
    uow.session.add(found)
    await uow.commit()
    return found


async def _nudge(uow: UnitOfWork, journey: CareJourney, community: Community, step: str) -> None:
    title, body = _MESSAGES.get((journey.trigger, step), _MESSAGES[("inactive", step)])
    await notify(
        uow=uow,
        user_id=journey.user_id,
        kind="care_nudge",
        title=title.format(name=community.name),
        body=body.format(name=community.name),
        community_id=journey.community_id,
        data={"journey_id": str(journey.id), "step": step},
    )
    await uow.record(
        CareNudgeSent(
            journey_id=journey.id,
            community_id=journey.community_id,
            user_id=journey.user_id,
            trigger=journey.trigger,
            step=step,
            sent_at=utcnow(),
        ),
        subject=str(journey.community_id),
    )


async def _open_journey(
    uow: UnitOfWork, community_id: uuid.UUID, user_id: uuid.UUID
) -> CareJourney | None:
    stmt = (
        select(CareJourney)
        .where(
            CareJourney.community_id == community_id,
            CareJourney.user_id == user_id,
            col(CareJourney.status).in_(OPEN_STATUSES),
        )
        .with_for_update()
    )
    return (await uow.session.exec(stmt)).first()


async def start_journey(
    *,
    uow: UnitOfWork,
    community_id: uuid.UUID,
    user_id: uuid.UUID,
    trigger: str,
    trigger_event_id: uuid.UUID,
    now: datetime | None = None,
) -> CareJourney | None:
    """Begin a journey with the first nudge (no commit); None when one is open or care is off."""
    community = await uow.session.get(Community, community_id)
    if community is None or await active_role(uow, community_id, user_id) is None:
        return None  # only active members of a community members knows are nudged
    settings = await settings_of(uow, community_id)
    if not settings.enabled or await _open_journey(uow, community_id, user_id) is not None:
        return None
    now = now or utcnow()
    journey = CareJourney(
        community_id=community_id,
        user_id=user_id,
        trigger=trigger,
        trigger_event_id=trigger_event_id,
        started_at=now,
        follow_up_due_at=now + timedelta(hours=settings.follow_up_after_hours),
        closes_at=now + timedelta(days=settings.win_back_days),
    )
    uow.session.add(journey)
    await uow.session.flush()  # the partial unique index refuses a second open journey here
    await _nudge(uow, journey, community, "first")
    return journey


async def record_activity(
    *, uow: UnitOfWork, community_id: uuid.UUID, user_id: uuid.UUID, active_at: datetime
) -> CareJourney | None:
    """Close an open journey as won back when the member is active within its window."""
    journey = await _open_journey(uow, community_id, user_id)
    if journey is None or active_at < journey.started_at:
        return None  # no journey, or activity from before the nudge (facts arrive out of order)
    if active_at > journey.closes_at:
        journey.status, journey.closed_at = JourneyStatus.lapsed, journey.closes_at
        uow.session.add(journey)
        return None
    journey.status = JourneyStatus.won_back
    journey.won_back_at = journey.closed_at = active_at
    uow.session.add(journey)
    await uow.record(
        MemberWonBack(
            journey_id=journey.id,
            community_id=community_id,
            user_id=user_id,
            trigger=journey.trigger,
            nudges_sent=journey.nudges_sent,
            started_at=journey.started_at,
            won_back_at=active_at,
            days_to_win_back=round((active_at - journey.started_at).total_seconds() / 86400, 3),
        ),
        subject=str(community_id),
    )
    return journey


async def tick(runtime: ServiceRuntime, *, now: datetime, batch: int = TICK_BATCH) -> TickResult:
    """One scheduler pass: send due follow-ups and lapse expired journeys.

    Safe with several replicas: due rows are claimed with `FOR UPDATE SKIP LOCKED` on
    PostgreSQL, so two replicas ticking at once each take different journeys and a follow-up is
    sent once (SQLite has one writer at a time anyway). The clock is a parameter for tests.
    """
    result = TickResult()
    async with runtime.db.session() as session:
        uow = UnitOfWork(session, runtime)
        due = (
            select(CareJourney)
            .where(
                CareJourney.status == JourneyStatus.nudged,
                col(CareJourney.follow_up_due_at) <= now,
                col(CareJourney.closes_at) > now,
            )
            .order_by(col(CareJourney.follow_up_due_at))
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
        for journey in (await session.exec(due)).all():
            community = await session.get(Community, journey.community_id)
            if community is None:
                continue
            await _nudge(uow, journey, community, "follow_up")
            journey.status = JourneyStatus.followed_up
            journey.followed_up_at = now
            journey.nudges_sent += 1
            session.add(journey)
            result.follow_ups += 1
        expired = (
            select(CareJourney)
            .where(col(CareJourney.status).in_(OPEN_STATUSES), col(CareJourney.closes_at) <= now)
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
        for journey in (await session.exec(expired)).all():
            journey.status, journey.closed_at = JourneyStatus.lapsed, now
            session.add(journey)
            result.lapsed += 1
        await session.commit()
    return result


async def list_journeys(
    *,
    uow: UnitOfWork,
    community_id: uuid.UUID,
    actor: Principal,
    page: PageParams,
    status: JourneyStatus | None = None,
) -> list[CareJourney]:
    """A community's care journeys, newest first (managers; limit+1 rows)."""
    await require_manager(uow, community_id, actor)
    stmt = (
        select(CareJourney)
        .where(CareJourney.community_id == community_id)
        .order_by(col(CareJourney.id).desc())
        .limit(page.limit + 1)
    )
    if status is not None:
        stmt = stmt.where(CareJourney.status == status)
    if page.after:
        stmt = stmt.where(col(CareJourney.id) < after_id(page))
    return list((await uow.session.exec(stmt)).all())


async def summary(*, uow: UnitOfWork, community_id: uuid.UUID, actor: Principal) -> CareSummary:
    """Journeys started, open, won back and lapsed, and the win-back rate (managers)."""
    await require_manager(uow, community_id, actor)
    stmt = (
        select(CareJourney.status, func.count())
        .where(CareJourney.community_id == community_id)
        .group_by(col(CareJourney.status))
    )
    counts = {JourneyStatus(s): n for s, n in (await uow.session.exec(stmt)).all()}
    won, lapsed = counts.get(JourneyStatus.won_back, 0), counts.get(JourneyStatus.lapsed, 0)
    return CareSummary(
        community_id=community_id,
        started=sum(counts.values()),
        open=sum(counts.get(s, 0) for s in OPEN_STATUSES),
        won_back=won,
        lapsed=lapsed,
        win_back_rate=round(won / (won + lapsed), 4) if won + lapsed else None,
    )
