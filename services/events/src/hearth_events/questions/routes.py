"""Q&A routes: ask, list, upvote, answer and pin, the anonymity policy."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from hearth_events.questions import service
from hearth_events.questions.models import (
    QaPolicyPublic,
    QaPolicyUpdate,
    QuestionCreate,
    QuestionPublic,
    QuestionUpdate,
)
from servicekit.deps import UnitOfWorkDep
from servicekit.identity import CurrentPrincipal

router = APIRouter(tags=["questions"])


@router.post("/activities/{activity_id}/questions", status_code=status.HTTP_201_CREATED)
async def ask(
    activity_id: uuid.UUID, body: QuestionCreate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> QuestionPublic:
    """Ask a question (active, unmuted members; anonymous if the host allows)."""
    return await service.ask(uow, activity_id=activity_id, data=body, actor=actor)


@router.get("/activities/{activity_id}/questions")
async def list_questions(
    activity_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> list[QuestionPublic]:
    """Pinned first, then most upvoted (the 500 first; the community's members)."""
    return await service.list_questions(uow, activity_id=activity_id, actor=actor)


@router.put("/questions/{question_id}/vote")
async def upvote(
    question_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> QuestionPublic:
    """Upvote a question; once per member, again changes nothing."""
    return await service.upvote(uow, question_id=question_id, actor=actor)


@router.delete("/questions/{question_id}/vote")
async def withdraw_vote(
    question_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> QuestionPublic:
    """Take the caller's upvote back."""
    return await service.withdraw_vote(uow, question_id=question_id, actor=actor)


@router.patch("/questions/{question_id}")
async def update_question(
    question_id: uuid.UUID, body: QuestionUpdate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> QuestionPublic:
    """Mark answered, pin or unpin (organisers)."""
    return await service.update_question(uow, question_id=question_id, data=body, actor=actor)


@router.get("/activities/{activity_id}/qa-policy")
async def get_qa_policy(
    activity_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> QaPolicyPublic:
    """Whether anonymous questions are taken (the community's members)."""
    return await service.get_policy(uow, activity_id=activity_id, actor=actor)


@router.put("/activities/{activity_id}/qa-policy")
async def set_qa_policy(
    activity_id: uuid.UUID, body: QaPolicyUpdate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> QaPolicyPublic:
    """Allow or refuse anonymous questions (organisers)."""
    return await service.set_policy(uow, activity_id=activity_id, data=body, actor=actor)
