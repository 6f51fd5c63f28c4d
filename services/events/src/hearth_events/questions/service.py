"""Q&A use cases: ask, upvote (one per member), answer and pin, the anonymity policy."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from hearth_events.checkin import access
from hearth_events.models import Activity, ActivityState
from hearth_events.questions.events import QuestionAnswered, QuestionAsked
from hearth_events.questions.models import (
    QaPolicy,
    QaPolicyPublic,
    QaPolicyUpdate,
    Question,
    QuestionCreate,
    QuestionPublic,
    QuestionUpdate,
    QuestionVisibility,
    QuestionVote,
)
from servicekit.db import affected_rows
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.problems import conflict, not_found
from servicekit.types import as_utc

# Questions are asked before and during the activity, not on a draft or once it is over.
ASK_STATES = frozenset(
    {ActivityState.published, ActivityState.registration_closed, ActivityState.ongoing}
)
LIST_LIMIT = 500


async def ask(
    uow: UnitOfWork, *, activity_id: uuid.UUID, data: QuestionCreate, actor: Principal
) -> QuestionPublic:
    """Ask a question (active, unmuted members), anonymously if the host allows it."""
    activity = await access.activity_of(uow.session, activity_id)
    await access.require_voice(uow.session, activity, actor)
    if ActivityState(activity.state) not in ASK_STATES:
        raise conflict("questions-closed", f"the activity is {activity.state}: Q&A is closed")
    if data.anonymous and not (await _policy(uow, activity_id)).anonymous_allowed:
        raise conflict("anonymous-not-allowed", "the host does not take anonymous questions")
    question = Question(
        activity_id=activity_id,
        community_id=activity.community_id,
        author_id=actor.subject,
        anonymous=data.anonymous,
        text=data.text,
    )
    uow.session.add(question)
    await uow.record(
        QuestionAsked(
            question_id=question.id,
            activity_id=activity_id,
            community_id=activity.community_id,
            author_id=actor.subject,
            text=question.text,
            asked_at=question.asked_at,
            anonymous=question.anonymous,
        ),
        subject=str(activity_id),
    )
    await uow.commit()
    return _public(question, viewer=actor.subject, moderation=False, voted=False)


async def list_questions(
    uow: UnitOfWork, *, activity_id: uuid.UUID, actor: Principal
) -> list[QuestionPublic]:
    """Pinned first, then most upvoted, then oldest (held/hidden only to author and moderation)."""
    activity = await access.activity_of(uow.session, activity_id)
    await access.require_member(uow.session, activity, actor)
    moderation = await access.sees_moderation(uow.session, activity, actor)
    stmt = select(Question).where(Question.activity_id == activity_id)
    if not moderation:
        stmt = stmt.where(
            or_(
                col(Question.visibility) == QuestionVisibility.visible,
                col(Question.author_id) == actor.subject,  # held or rejected: with the reason
            )
        )
    stmt = stmt.order_by(
        col(Question.pinned).desc(),
        col(Question.upvotes).desc(),
        col(Question.asked_at),
        col(Question.id),
    ).limit(LIST_LIMIT)
    questions = list((await uow.session.exec(stmt)).all())
    votes = select(QuestionVote.question_id).where(
        QuestionVote.user_id == actor.subject,
        col(QuestionVote.question_id).in_([q.id for q in questions]),
    )
    mine = set((await uow.session.exec(votes)).all()) if questions else set()
    return [
        _public(q, viewer=actor.subject, moderation=moderation, voted=q.id in mine)
        for q in questions
    ]


async def upvote(uow: UnitOfWork, *, question_id: uuid.UUID, actor: Principal) -> QuestionPublic:
    """Upvote a question; voting again changes nothing (one vote per member)."""
    question, activity = await _question(uow, question_id)
    await access.require_voice(uow.session, activity, actor)
    if question.visibility != QuestionVisibility.visible:
        raise not_found("question", question_id)
    try:
        uow.session.add(QuestionVote(question_id=question_id, user_id=actor.subject))
        await uow.session.flush()  # the primary key answers: a second vote of the same member
    except IntegrityError:
        await uow.session.rollback()
    else:
        await _count(uow, question_id, +1)
        await uow.commit()
    return await _fresh(uow, question_id, actor, voted=True)


async def withdraw_vote(
    uow: UnitOfWork, *, question_id: uuid.UUID, actor: Principal
) -> QuestionPublic:
    """Take one's upvote back (not an error when there is none)."""
    _, activity = await _question(uow, question_id)
    await access.require_voice(uow.session, activity, actor)
    gone = await uow.session.execute(
        delete(QuestionVote).where(
            col(QuestionVote.question_id) == question_id, col(QuestionVote.user_id) == actor.subject
        )
    )
    if affected_rows(gone):
        await _count(uow, question_id, -1)
    await uow.commit()
    return await _fresh(uow, question_id, actor, voted=False)


async def update_question(
    uow: UnitOfWork, *, question_id: uuid.UUID, data: QuestionUpdate, actor: Principal
) -> QuestionPublic:
    """Mark a question answered (or not) and pin or unpin it (organisers)."""
    question, activity = await _question(uow, question_id)
    await access.require_organiser(uow.session, activity, actor)
    now = utcnow()
    if data.pinned is not None:
        question.pinned = data.pinned
    if data.answered is True and question.answered_at is None:
        question.answered_at, question.answered_by = now, actor.subject
        await uow.record(
            QuestionAnswered(
                question_id=question.id,
                activity_id=question.activity_id,
                community_id=question.community_id,
                author_id=question.author_id,
                answered_by=actor.subject,
                answered_at=now,
            ),
            subject=str(question.activity_id),
        )
    elif data.answered is False:
        question.answered_at = question.answered_by = None
    uow.session.add(question)
    await uow.commit()
    return await _fresh(uow, question_id, actor, voted=None)


async def get_policy(
    uow: UnitOfWork, *, activity_id: uuid.UUID, actor: Principal
) -> QaPolicyPublic:
    """The activity's Q&A policy (the community's members)."""
    activity = await access.activity_of(uow.session, activity_id)
    await access.require_member(uow.session, activity, actor)
    return await _policy(uow, activity_id)


async def set_policy(
    uow: UnitOfWork, *, activity_id: uuid.UUID, data: QaPolicyUpdate, actor: Principal
) -> QaPolicyPublic:
    """Allow or refuse anonymous questions (organisers)."""
    activity = await access.activity_of(uow.session, activity_id)
    await access.require_organiser(uow.session, activity, actor)
    own = await uow.session.get(QaPolicy, activity_id)
    if own is None:
        own = QaPolicy(activity_id=activity_id, updated_by=actor.subject)
    own.anonymous_allowed = data.anonymous_allowed
    own.updated_by, own.updated_at = actor.subject, utcnow()
    uow.session.add(own)
    await uow.commit()
    return QaPolicyPublic(activity_id=activity_id, anonymous_allowed=own.anonymous_allowed)


async def _policy(uow: UnitOfWork, activity_id: uuid.UUID) -> QaPolicyPublic:
    own = await uow.session.get(QaPolicy, activity_id)
    return QaPolicyPublic(
        activity_id=activity_id, anonymous_allowed=bool(own and own.anonymous_allowed)
    )


async def _count(uow: UnitOfWork, question_id: uuid.UUID, delta: int) -> None:
    # One atomic UPDATE: concurrent votes of different members all count.
    await uow.session.execute(
        update(Question)
        .where(col(Question.id) == question_id)
        .values(upvotes=col(Question.upvotes) + delta)
        .execution_options(synchronize_session=False)
    )


async def _question(uow: UnitOfWork, question_id: uuid.UUID) -> tuple[Question, Activity]:
    question = await uow.session.get(Question, question_id)
    if question is None:
        raise not_found("question", question_id)
    activity = await access.activity_of(uow.session, question.activity_id)
    return question, activity


async def _fresh(
    uow: UnitOfWork, question_id: uuid.UUID, actor: Principal, *, voted: bool | None
) -> QuestionPublic:
    question = await uow.session.get(Question, question_id, populate_existing=True)
    if question is None:
        raise not_found("question", question_id)
    activity = await access.activity_of(uow.session, question.activity_id)
    moderation = await access.sees_moderation(uow.session, activity, actor)
    if voted is None:
        voted = await uow.session.get(QuestionVote, (question_id, actor.subject)) is not None
    return _public(question, viewer=actor.subject, moderation=moderation, voted=voted)


def _public(
    question: Question, *, viewer: uuid.UUID, moderation: bool, voted: bool
) -> QuestionPublic:
    # Anonymous to other members, never to the author nor to moderation.
    own_or_moderation = moderation or question.author_id == viewer
    shown = not question.anonymous or own_or_moderation
    return QuestionPublic(
        id=question.id,
        activity_id=question.activity_id,
        community_id=question.community_id,
        author_id=question.author_id if shown else None,
        anonymous=question.anonymous,
        text=question.text,
        visibility=question.visibility,
        pinned=question.pinned,
        upvotes=question.upvotes,
        voted=voted,
        answered=question.answered_at is not None,
        answered_at=as_utc(question.answered_at) if question.answered_at else None,
        asked_at=as_utc(question.asked_at),
        hold_reasons=list(question.hold_reasons) if own_or_moderation else [],
        rejection_reason=question.rejection_reason if own_or_moderation else None,
    )
