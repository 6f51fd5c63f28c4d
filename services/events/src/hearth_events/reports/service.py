"""The summary report: figures in JSON, the attendee list in CSV, and activity.summarized."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from sqlalchemy import case, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_events.attendance import attendance
from hearth_events.checkin.access import is_host
from hearth_events.events import ActivitySummarized
from hearth_events.feedback.models import Feedback
from hearth_events.models import Activity, Registration
from hearth_events.reports.activity import before_and_after
from hearth_events.reports.models import ActivityConversion, ActivitySummary
from hearth_events.service import require_manager
from servicekit.db import Database
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.problems import not_found
from servicekit.types import as_utc

CSV_BATCH = 500


async def question_count(session: AsyncSession, activity: Activity) -> int:
    """Q&A questions asked at the activity."""
    from hearth_events.questions.models import Question

    stmt = select(func.count()).where(col(Question.activity_id) == activity.id)
    return int((await session.exec(stmt)).one())


async def figures(session: AsyncSession, activity: Activity) -> ActivitySummary:
    """The activity's figures as of now."""
    by_status = dict(
        (
            await session.execute(
                select(col(Registration.status), func.count())
                .where(col(Registration.activity_id) == activity.id)
                .group_by(col(Registration.status))
            )
        ).all()
    )
    seen = await attendance(session, activity)
    count, avg, promoters, detractors = (
        await session.execute(
            select(
                func.count(),
                func.avg(col(Feedback.satisfaction)),
                func.sum(case((col(Feedback.nps) >= 9, 1), else_=0)),
                func.sum(case((col(Feedback.nps) <= 6, 1), else_=0)),
            ).where(col(Feedback.activity_id) == activity.id)
        )
    ).one()
    kinds = dict(
        (
            await session.execute(
                select(col(ActivityConversion.kind), func.count())
                .where(col(ActivityConversion.activity_id) == activity.id)
                .group_by(col(ActivityConversion.kind))
            )
        ).all()
    )
    value = (
        await session.execute(
            select(func.coalesce(func.sum(col(ActivityConversion.value)), 0.0)).where(
                col(ActivityConversion.activity_id) == activity.id
            )
        )
    ).scalar_one()
    return ActivitySummary(
        activity_id=activity.id,
        community_id=activity.community_id,
        state=activity.state,
        capacity=activity.capacity,
        registrations=sum(by_status.values()),
        confirmed=by_status.get("confirmed", 0),
        waitlisted=by_status.get("waitlisted", 0),
        pending=by_status.get("pending", 0),
        cancelled=by_status.get("cancelled", 0),
        rejected=by_status.get("rejected", 0),
        attended=seen.attended,
        no_shows=seen.no_shows,
        attendance_rate=round(seen.attended / seen.confirmed, 4) if seen.confirmed else None,
        feedback_count=count,
        satisfaction_avg=round(float(avg), 2) if avg is not None else None,
        # NPS: the share of promoters (9-10) minus the share of detractors (0-6), in points.
        nps=round(100 * ((promoters or 0) - (detractors or 0)) / count, 1) if count else None,
        questions=await question_count(session, activity),
        conversions=sum(kinds.values()),
        conversion_value=float(value or 0),
        conversions_by_kind=kinds,
        community_activity=await before_and_after(session, activity),
    )


async def summarized_event(
    session: AsyncSession, activity: Activity, actor_id: uuid.UUID, now: datetime
) -> ActivitySummarized:
    """activity.summarized with the figures at the moment of the transition (wired in app.py)."""
    f = await figures(session, activity)
    return ActivitySummarized(
        activity_id=activity.id,
        community_id=activity.community_id,
        registrations=f.registrations,
        confirmed=f.confirmed,
        waitlisted=f.waitlisted,
        attended=f.attended,
        no_shows=f.no_shows,
        attendance_rate=f.attendance_rate,
        feedback_count=f.feedback_count,
        satisfaction_avg=f.satisfaction_avg,
        nps=f.nps,
        questions=f.questions,
        conversions=f.conversions,
        conversion_value=f.conversion_value,
        summarized_by=actor_id,
        summarized_at=now,
    )


async def summary(*, uow: UnitOfWork, activity_id: uuid.UUID, actor: Principal) -> ActivitySummary:
    """The summary report of an activity (organisers and hosts)."""
    activity = await _activity(uow, activity_id)
    await require_manager(uow.session, activity, actor)
    return await figures(uow.session, activity)


def summary_csv(report: ActivitySummary) -> str:
    """The summary as CSV: one `metric,value` row per figure (nested ones dotted)."""
    rows: list[list[object]] = [["metric", "value"]]
    for name, value in report.model_dump(mode="json").items():
        if isinstance(value, dict):
            for key, inner in _flat(value, name):
                rows.append([key, inner])
        else:
            rows.append([name, "" if value is None else value])
    return "".join(_line(r) for r in rows)


def _flat(values: dict[str, object], prefix: str) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for key, value in values.items():
        if isinstance(value, dict):
            out += _flat(value, f"{prefix}.{key}")
        else:
            out.append((f"{prefix}.{key}", "" if value is None else value))
    return out


async def attendee_export(*, uow: UnitOfWork, activity_id: uuid.UUID, actor: Principal) -> bool:
    """Check who may download the attendee list: managers; PII (who, answers) only for hosts.

    Ends the request's transaction: the CSV streams from sessions of its own, and on SQLite an
    open transaction here would hold the single writer slot while the stream waits for it.
    """
    activity = await _activity(uow, activity_id)
    await require_manager(uow.session, activity, actor)
    with_pii = await is_host(uow.session, activity, actor)
    await uow.session.rollback()
    return with_pii


async def attendee_csv(
    db: Database, activity_id: uuid.UUID, *, with_pii: bool
) -> AsyncIterator[str]:
    """The attendee list as CSV, streamed in batches (user ids and answers only with PII)."""
    header = ["position", "registration_id", "status", "registered_at", "satisfaction", "nps"]
    if with_pii:
        header += ["user_id", "answers"]
    yield _line(header)
    last: tuple[int, uuid.UUID] | None = None
    while True:
        async with db.session() as session:
            stmt = (
                select(Registration, Feedback)
                .join(
                    Feedback,
                    (col(Feedback.activity_id) == col(Registration.activity_id))
                    & (col(Feedback.user_id) == col(Registration.user_id)),
                    isouter=True,
                )
                .where(col(Registration.activity_id) == activity_id)
                .order_by(col(Registration.position), col(Registration.id))
                .limit(CSV_BATCH)
            )
            if last is not None:
                stmt = stmt.where(
                    (col(Registration.position) > last[0])
                    | ((col(Registration.position) == last[0]) & (col(Registration.id) > last[1]))
                )
            rows = (await session.execute(stmt)).all()
        for registration, feedback in rows:
            line: list[object] = [
                registration.position,
                registration.id,
                registration.status,
                as_utc(registration.registered_at).isoformat(),
                feedback.satisfaction if feedback else "",
                feedback.nps if feedback else "",
            ]
            if with_pii:
                line += [registration.user_id, json.dumps(registration.answers, ensure_ascii=False)]
            yield _line(line)
        if len(rows) < CSV_BATCH:
            return
        last = (rows[-1][0].position, rows[-1][0].id)


def _line(values: Sequence[object]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(values)
    return out.getvalue()


async def _activity(uow: UnitOfWork, activity_id: uuid.UUID) -> Activity:
    activity = await uow.session.get(Activity, activity_id)
    if activity is None:
        raise not_found("activity", activity_id)
    return activity
