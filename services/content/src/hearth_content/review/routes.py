"""Review routes: policy, queue, claims, decisions (single and bulk), resubmission, history."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from hearth_content.models import BODY_MAX, TITLE_MAX, PostPublic
from hearth_content.review import service
from hearth_content.review.models import ReviewClaim
from hearth_content.review.schemas import (
    BulkDecisionIn,
    BulkResult,
    DecisionIn,
    DecisionOut,
    PolicyIn,
    PolicyOut,
    QueueItem,
)
from servicekit.deps import UnitOfWorkDep
from servicekit.identity import CurrentPrincipal
from servicekit.ids import utcnow
from servicekit.types import CleanInput

router = APIRouter(tags=["review"])


class ResubmitIn(CleanInput):
    """Body of POST /posts/{id}/resubmit: the revised title and/or body."""

    title: str | None = Field(default=None, min_length=1, max_length=TITLE_MAX)
    body: str | None = Field(default=None, max_length=BODY_MAX)


class ClaimOut(BaseModel):
    """A reviewer's claim on a post."""

    post_id: uuid.UUID
    reviewer_id: uuid.UUID
    expires_at: str


def _claim(c: ReviewClaim) -> ClaimOut:
    return ClaimOut(post_id=c.post_id, reviewer_id=c.reviewer_id, expires_at=str(c.expires_at))


@router.get("/communities/{community_id}/review-policy")
async def get_policy(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> PolicyOut:
    """The community's review policy (its reviewers may read it)."""
    await service._require_role(uow, community_id, actor, service.STAGE_ROLES[1])
    p = await service.get_policy(uow, community_id)
    return PolicyOut(
        community_id=community_id, mode=p.mode, partner_second_stage=p.partner_second_stage
    )


@router.put("/communities/{community_id}/review-policy")
async def set_policy(
    community_id: uuid.UUID, body: PolicyIn, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> PolicyOut:
    """Set review off, one stage or two stages (owner, admins, platform staff)."""
    p = await service.set_policy(uow=uow, community_id=community_id, data=body, actor=actor)
    return PolicyOut(
        community_id=community_id, mode=p.mode, partner_second_stage=p.partner_second_stage
    )


@router.get("/communities/{community_id}/review-queue")
async def review_queue(
    community_id: uuid.UUID,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
    stage: Annotated[int | None, Query(ge=1, le=2)] = None,
    older_than_minutes: Annotated[int | None, Query(ge=0, le=525_600)] = None,
    column_id: Annotated[uuid.UUID | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[QueueItem]:
    """Posts waiting for review, oldest first, with SLA age and claims (reviewers only)."""
    older = timedelta(minutes=older_than_minutes) if older_than_minutes is not None else None
    rows = await service.queue(
        uow=uow,
        community_id=community_id,
        actor=actor,
        stage=stage,
        older_than=older,
        limit=limit,
        column_id=column_id,
    )
    now = utcnow()
    return [
        QueueItem(
            post_id=p.id,
            title=p.title,
            author_id=p.author_id,
            stage=p.review_stage or 1,
            submitted_at=p.submitted_at,
            age_seconds=int((now - service._aware(p.submitted_at)).total_seconds()),
            claimed_by=c.reviewer_id if c else None,
            claim_expires_at=c.expires_at if c else None,
        )
        for p, c in rows
    ]


@router.post("/posts/{post_id}/review/claim")
async def claim(post_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal) -> ClaimOut:
    """Claim a post in review (409 while another reviewer's claim lasts)."""
    return _claim(await service.claim(uow=uow, post_id=post_id, actor=actor))


@router.delete("/posts/{post_id}/review/claim", status_code=status.HTTP_204_NO_CONTENT)
async def release_claim(post_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal) -> None:
    """Give up one's claim."""
    await service.release_claim(uow=uow, post_id=post_id, actor=actor)


@router.post("/posts/{post_id}/review/decision", status_code=status.HTTP_201_CREATED)
async def decide(
    post_id: uuid.UUID, body: DecisionIn, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> DecisionOut:
    """Approve or reject the post's current stage, with a note."""
    d = await service.decide(uow=uow, post_id=post_id, data=body, actor=actor)
    return DecisionOut.model_validate(d, from_attributes=True)


@router.post("/communities/{community_id}/review/bulk")
async def bulk_decide(
    community_id: uuid.UUID, body: BulkDecisionIn, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> BulkResult:
    """Approve or reject several posts at once; each is decided or refused on its own."""
    decided, refused = await service.decide_many(
        uow=uow,
        community_id=community_id,
        post_ids=body.post_ids,
        data=DecisionIn(verdict=body.verdict, note=body.note),
        actor=actor,
    )
    return BulkResult(decided=decided, refused=refused)


@router.post("/posts/{post_id}/resubmit")
async def resubmit(
    post_id: uuid.UUID, body: ResubmitIn, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> PostPublic:
    """The author resubmits a rejected post, revised; it re-enters screening and review."""
    post = await service.resubmit(
        uow=uow, post_id=post_id, title=body.title, body=body.body, actor=actor
    )
    return PostPublic.model_validate(post, from_attributes=True)


@router.get("/posts/{post_id}/review/history")
async def history(
    post_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> list[DecisionOut]:
    """Every review decision on the post (its author and staff)."""
    rows = await service.history(uow=uow, post_id=post_id, actor=actor)
    return [DecisionOut.model_validate(d, from_attributes=True) for d in rows]
