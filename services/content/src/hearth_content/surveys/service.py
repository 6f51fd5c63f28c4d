"""Survey use cases: create, answer (one response per member), close, summarise, export CSV.

Functions called by routes commit. One response per member is the database's unique
constraint (survey_id, respondent_id): the first submission inserts, a concurrent or later one
finds the row and, if the survey allows it, replaces its answers; never a second row.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import func, update
from sqlmodel import col, select

from hearth_content import guards
from hearth_content import service as posts
from hearth_content.models import COMMUNITY_STAFF_ROLES, Membership
from hearth_content.surveys.events import SurveyAnswered, SurveyClosed, SurveyCreated
from hearth_content.surveys.models import (
    CHOICES,
    SCALES,
    TEXT_ANSWER_MAX,
    QuestionKind,
    QuestionResult,
    Survey,
    SurveyCreate,
    SurveyResponse,
    SurveyResults,
    SurveyState,
)
from servicekit.db import affected_rows, upsert_insert
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow, uuid7
from servicekit.pagination import PageParams, after_id
from servicekit.problems import Problem, conflict, forbidden, not_found
from servicekit.runtime import ServiceRuntime

# Rows read per query by the results summary and the CSV export (never all at once).
BATCH = 500
# CSV cells a spreadsheet would run as a formula (CSV injection): prefixed with a quote.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# --- Who may do what --------------------------------------------------------------------------


async def _gate(uow: UnitOfWork, community_id: uuid.UUID, actor: Principal) -> Membership:
    """The one write gate of surveys: content's, with 404 for strangers (guards.py)."""
    return await guards.visible_writer(uow, community_id, actor)


async def _reader(uow: UnitOfWork, community_id: uuid.UUID, actor: Principal) -> Membership | None:
    """The actor's active membership, or None for platform staff; others are refused."""
    _, membership = await posts._community_access(uow, community_id, actor)
    if membership is None and not actor.is_staff:
        raise forbidden("only members of this community may read its surveys")
    return membership


def _runs(membership: Membership | None, actor: Principal) -> bool:
    """Platform staff, or the community's owner, admins and moderators."""
    return actor.is_staff or (membership is not None and membership.role in COMMUNITY_STAFF_ROLES)


def _owns(survey: Survey, membership: Membership | None, actor: Principal) -> bool:
    """The survey's author, platform staff, or the community's owner and admins."""
    return (
        survey.author_id == actor.subject
        or actor.is_staff
        or (membership is not None and membership.role in posts.COMMUNITY_ADMIN_ROLES)
    )


def state_of(survey: Survey, now: datetime | None = None) -> SurveyState:
    """Scheduled before its window, open inside it, closed after it or once closed early."""
    now = now or utcnow()
    if survey.closed_at is not None or now >= survey.closes_at:
        return SurveyState.closed
    return SurveyState.scheduled if now < survey.opens_at else SurveyState.open


# --- Surveys ----------------------------------------------------------------------------------


async def create_survey(
    *, uow: UnitOfWork, community_id: uuid.UUID, data: SurveyCreate, actor: Principal
) -> Survey:
    """Open a survey in a community (any active, unmuted member; its author may export it)."""
    await _gate(uow, community_id, actor)
    now = utcnow()
    questions = [
        {"id": f"q{i}", **q.model_dump(mode="json")} for i, q in enumerate(data.questions, 1)
    ]
    survey = Survey(
        community_id=community_id,
        author_id=actor.subject,
        title=data.title,
        description=data.description,
        questions=questions,
        opens_at=data.opens_at or now,
        closes_at=data.closes_at,
        editable=data.editable,
        results_public=data.results_public,
        created_at=now,
    )
    uow.session.add(survey)
    await uow.record(
        SurveyCreated(
            survey_id=survey.id,
            community_id=community_id,
            author_id=actor.subject,
            title=survey.title,
            questions=len(questions),
            opens_at=survey.opens_at,
            closes_at=survey.closes_at,
            created_at=now,
        ),
        subject=str(survey.id),
    )
    await uow.commit()
    return survey


async def get_survey(
    *, uow: UnitOfWork, survey_id: uuid.UUID, actor: Principal
) -> tuple[Survey, Membership | None]:
    """A survey the actor may read, with the actor's membership (404 for outsiders)."""
    survey = await uow.session.get(Survey, survey_id)
    if survey is None:
        raise not_found("survey", survey_id)
    try:
        membership = await _reader(uow, survey.community_id, actor)
    except Problem:
        raise not_found("survey", survey_id) from None
    return survey, membership


async def list_surveys(
    *, uow: UnitOfWork, community_id: uuid.UUID, actor: Principal, page: PageParams
) -> list[Survey]:
    """A community's surveys, newest first (limit+1 rows), for its members and staff."""
    await _reader(uow, community_id, actor)
    stmt = (
        select(Survey)
        .where(col(Survey.community_id) == community_id)
        .order_by(col(Survey.id).desc())
        .limit(page.limit + 1)
    )
    if page.after:
        stmt = stmt.where(col(Survey.id) < after_id(page))
    return list((await uow.session.exec(stmt)).all())


async def response_counts(uow: UnitOfWork, *, survey_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """How many members answered each survey."""
    if not survey_ids:
        return {}
    stmt = (
        select(SurveyResponse.survey_id, func.count())
        .where(col(SurveyResponse.survey_id).in_(survey_ids))
        .group_by(col(SurveyResponse.survey_id))
    )
    return {sid: int(n) for sid, n in (await uow.session.exec(stmt)).all()}


async def close_survey(*, uow: UnitOfWork, survey_id: uuid.UUID, actor: Principal) -> Survey:
    """Close a survey before its window ends (its author, staff, the community's admins)."""
    survey, membership = await get_survey(uow=uow, survey_id=survey_id, actor=actor)
    if not _owns(survey, membership, actor):
        raise forbidden("only the survey's author and the community's admins may close it")
    locked = await uow.session.get(Survey, survey_id, with_for_update=True, populate_existing=True)
    assert locked is not None
    if state_of(locked) == SurveyState.closed:
        raise conflict("survey-closed", "the survey is already closed")
    now = utcnow()
    locked.closed_at = now
    uow.session.add(locked)
    responses = (await response_counts(uow, survey_ids=[survey_id])).get(survey_id, 0)
    await uow.record(
        SurveyClosed(
            survey_id=survey_id,
            community_id=locked.community_id,
            closed_by=actor.subject,
            responses=responses,
            closed_at=now,
        ),
        subject=str(survey_id),
    )
    await uow.commit()
    return locked


# --- Responses --------------------------------------------------------------------------------


def validate_answers(questions: list[dict[str, Any]], answers: dict[str, Any]) -> dict[str, Any]:
    """The answers, checked against the questions; a 422 problem lists every bad one."""
    errors: list[dict[str, str]] = []
    known = {q["id"] for q in questions}
    for qid in sorted(set(answers) - known):
        errors.append({"question": qid, "detail": "no such question in this survey"})
    clean: dict[str, Any] = {}
    for q in questions:
        qid, kind, value = q["id"], QuestionKind(q["kind"]), answers.get(q["id"])
        if value is None or value == "" or value == []:
            if q["required"]:
                errors.append({"question": qid, "detail": "an answer is required"})
            continue
        problem = _check(q, kind, value)
        if problem:
            errors.append({"question": qid, "detail": problem})
        else:
            clean[qid] = sorted(set(value)) if kind == QuestionKind.multiple else value
    if errors:
        raise Problem(
            422,
            "invalid-answers",
            "Unprocessable Content",
            "; ".join(f"{e['question']}: {e['detail']}" for e in errors),
            errors=errors,
        )
    return clean


def _check(q: dict[str, Any], kind: QuestionKind, value: Any) -> str | None:
    """Why one answer does not fit its question, or None."""
    options = len(q.get("options") or [])
    if kind == QuestionKind.single:
        if not _is_int(value) or not 0 <= value < options:
            return f"answer with one option index 0..{options - 1}"
    elif kind == QuestionKind.multiple:
        if not isinstance(value, list) or not all(_is_int(v) for v in value):
            return "answer with a list of option indexes"
        if any(not 0 <= v < options for v in value):
            return f"option indexes are 0..{options - 1}"
        limit = q.get("max_choices") or options
        if len(set(value)) > limit:
            return f"choose at most {limit}"
    elif kind in SCALES:
        low, high = SCALES[kind]
        if not _is_int(value) or not low <= value <= high:
            return f"answer with an integer {low}..{high}"
    elif kind == QuestionKind.text:
        if not isinstance(value, str):
            return "answer with text"
        if len(value) > TEXT_ANSWER_MAX:
            return f"at most {TEXT_ANSWER_MAX} characters"
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


async def answer(
    *, uow: UnitOfWork, survey_id: uuid.UUID, answers: dict[str, Any], actor: Principal
) -> SurveyResponse:
    """Give or (if the survey allows it, until it closes) change one's response."""
    survey = await uow.session.get(Survey, survey_id)
    if survey is None:
        raise not_found("survey", survey_id)
    try:
        await _gate(uow, survey.community_id, actor)
    except Problem as problem:
        if problem.status == 404:  # a stranger to a private community: not even its id
            raise not_found("survey", survey_id) from None
        raise
    # A shared lock: answers go in side by side, while a close (FOR UPDATE) waits for them.
    await uow.session.exec(
        select(Survey.id).where(col(Survey.id) == survey_id).with_for_update(read=True)
    )
    await uow.session.refresh(survey)
    current = state_of(survey)
    if current == SurveyState.scheduled:
        raise conflict("survey-not-open", f"the survey opens at {survey.opens_at.isoformat()}")
    if current == SurveyState.closed:
        raise conflict("survey-closed", "the survey is closed")
    clean = validate_answers(survey.questions, answers)
    now = utcnow()
    inserted = await uow.session.execute(
        upsert_insert(uow.session, SurveyResponse)
        .values(
            id=uuid7(),
            survey_id=survey_id,
            respondent_id=actor.subject,
            answers=clean,
            submitted_at=now,
            updated_at=now,
            revision=1,
        )
        .on_conflict_do_nothing(index_elements=["survey_id", "respondent_id"])
    )
    if not affected_rows(inserted):
        # Answered before (or a moment ago, concurrently): the unique constraint kept one row.
        if not survey.editable:
            raise conflict("already-answered", "this survey takes one response per member")
        await uow.session.execute(
            update(SurveyResponse)
            .where(
                col(SurveyResponse.survey_id) == survey_id,
                col(SurveyResponse.respondent_id) == actor.subject,
            )
            .values(answers=clean, updated_at=now, revision=SurveyResponse.revision + 1)  # type: ignore[operator]
        )
    response = await _response(uow, survey_id, actor.subject)
    assert response is not None
    await uow.record(
        SurveyAnswered(
            survey_id=survey_id,
            community_id=survey.community_id,
            respondent_id=actor.subject,
            revision=response.revision,
            answered_at=now,
        ),
        subject=str(survey_id),
    )
    await uow.commit()
    return response


async def _response(
    uow: UnitOfWork, survey_id: uuid.UUID, respondent: uuid.UUID
) -> SurveyResponse | None:
    stmt = (
        select(SurveyResponse)
        .where(
            col(SurveyResponse.survey_id) == survey_id,
            col(SurveyResponse.respondent_id) == respondent,
        )
        .execution_options(populate_existing=True)
    )
    return (await uow.session.exec(stmt)).first()


async def my_response(*, uow: UnitOfWork, survey_id: uuid.UUID, actor: Principal) -> SurveyResponse:
    """The actor's own response (404 when not answered)."""
    await get_survey(uow=uow, survey_id=survey_id, actor=actor)
    response = await _response(uow, survey_id, actor.subject)
    if response is None:
        raise not_found("response to survey", survey_id)
    return response


# --- Results and export -----------------------------------------------------------------------


async def _batch(
    session: Any, survey_id: uuid.UUID, after: uuid.UUID | None
) -> list[SurveyResponse]:
    """Up to BATCH responses of a survey after the id `after`, in id order (keyset)."""
    stmt = (
        select(SurveyResponse)
        .where(col(SurveyResponse.survey_id) == survey_id)
        .order_by(col(SurveyResponse.id))
        .limit(BATCH)
    )
    if after is not None:
        stmt = stmt.where(col(SurveyResponse.id) > after)
    return list((await session.exec(stmt)).all())


async def _batches(session: Any, survey_id: uuid.UUID) -> AsyncIterator[list[SurveyResponse]]:
    """A survey's responses in id order, BATCH rows per query (keyset: no offset scans)."""
    last: uuid.UUID | None = None
    while rows := await _batch(session, survey_id, last):
        yield rows
        last = rows[-1].id


async def results(*, uow: UnitOfWork, survey_id: uuid.UUID, actor: Principal) -> SurveyResults:
    """The summary per question: counts, means of scales, NPS of 0-10 scales."""
    survey, membership = await get_survey(uow=uow, survey_id=survey_id, actor=actor)
    if not survey.results_public and not (
        _owns(survey, membership, actor) or _runs(membership, actor)
    ):
        raise forbidden("this survey's results are for its author and the community's team")
    tallies: dict[str, dict[str, int]] = {q["id"]: {} for q in survey.questions}
    answered = dict.fromkeys(tallies, 0)
    total = 0
    async for rows in _batches(uow.session, survey_id):
        for row in rows:
            total += 1
            for qid, value in row.answers.items():
                if qid not in tallies:
                    continue
                answered[qid] += 1
                values = value if isinstance(value, list) else [value]
                for v in values:
                    key = str(v) if not isinstance(v, str) else "text"
                    tallies[qid][key] = tallies[qid].get(key, 0) + 1
    return SurveyResults(
        survey_id=survey_id,
        responses=total,
        state=state_of(survey),
        questions=[_summary(q, tallies[q["id"]], answered[q["id"]]) for q in survey.questions],
    )


def _summary(q: dict[str, Any], tally: dict[str, int], answered: int) -> QuestionResult:
    kind = QuestionKind(q["kind"])
    result = QuestionResult(id=q["id"], prompt=q["prompt"], kind=kind, answered=answered)
    if kind in CHOICES:
        result.counts = {o: tally.get(str(i), 0) for i, o in enumerate(q["options"])}
    elif kind in SCALES:
        low, high = SCALES[kind]
        result.counts = {str(v): tally.get(str(v), 0) for v in range(low, high + 1)}
        if answered:
            result.mean = round(sum(int(k) * n for k, n in result.counts.items()) / answered, 3)
        if kind == QuestionKind.scale_0_10 and answered:
            promoters = result.counts["9"] + result.counts["10"]
            detractors = sum(result.counts[str(v)] for v in range(7))
            result.nps = round(100 * (promoters - detractors) / answered, 1)
    return result


async def export_access(
    *, uow: UnitOfWork, survey_id: uuid.UUID, actor: Principal
) -> list[dict[str, Any]]:
    """The survey's questions if the actor may export it (author, staff, admins); ends the tx."""
    survey, membership = await get_survey(uow=uow, survey_id=survey_id, actor=actor)
    if not _owns(survey, membership, actor):
        raise forbidden("only the survey's author and the community's admins may export it")
    questions = list(survey.questions)
    # The stream reads in sessions of its own; on SQLite an open transaction of the request
    # would hold the one write lock while the stream waits for it.
    await uow.session.rollback()
    return questions


def neutralise(cell: Any) -> Any:
    """A CSV cell a spreadsheet will not run: text starting with = + - @ (or tab, CR) is quoted."""
    if isinstance(cell, str) and cell.startswith(FORMULA_START):
        return "'" + cell
    return cell


def _cells(q: dict[str, Any], value: Any) -> Any:
    kind = QuestionKind(q["kind"])
    if value is None:
        return ""
    options = q.get("options") or []
    if kind == QuestionKind.single:
        return options[value] if 0 <= value < len(options) else ""
    if kind == QuestionKind.multiple:
        return "; ".join(options[v] for v in value if 0 <= v < len(options))
    return value


async def export_csv(
    runtime: ServiceRuntime, *, survey_id: uuid.UUID, questions: list[dict[str, Any]]
) -> AsyncIterator[str]:
    """The responses as CSV, one chunk per batch of rows (UTF-8 with a BOM for spreadsheets)."""
    # Sessions of its own (one per batch), so the stream outlives the request's session.
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    header = ["respondent_id", "submitted_at", "updated_at"] + [
        f"{q['id']}: {q['prompt']}" for q in questions
    ]
    writer.writerow([neutralise(c) for c in header])
    yield "\ufeff" + buffer.getvalue()
    last: uuid.UUID | None = None
    while True:
        # A short session per batch: a long export never holds a transaction (nor, on SQLite,
        # the write lock) while the client reads slowly.
        async with runtime.db.session() as session:
            rows = await _batch(session, survey_id, last)
        if not rows:
            return
        last = rows[-1].id
        buffer.seek(0)
        buffer.truncate()
        for row in rows:
            writer.writerow(
                [str(row.respondent_id), row.submitted_at.isoformat(), row.updated_at.isoformat()]
                + [neutralise(_cells(q, row.answers.get(q["id"]))) for q in questions]
            )
        yield buffer.getvalue()
