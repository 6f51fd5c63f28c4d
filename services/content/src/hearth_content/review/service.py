"""Review use cases: the first stage a submission needs, claims, decisions, queue, history.

Order: moderation's screening verdict comes first (hearth_content.service.apply_screening);
only a post that screening approved enters the human stages, as `in_review`. Routes commit;
`first_stage` is called inside submission and never commits.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlmodel import col, select

from hearth_content import guards
from hearth_content import service as posts
from hearth_content.calendar import service as calendar
from hearth_content.calendar.models import Booking
from hearth_content.events import PostApproved, PostRejected, PostReviewDecided, PostRevised
from hearth_content.models import (
    COMMUNITY_STAFF_ROLES,
    CommunityRole,
    Membership,
    Post,
    PostAuthorship,
    PostStatus,
)
from hearth_content.review.models import (
    CLAIM_TTL,
    ReviewClaim,
    ReviewDecision,
    ReviewMode,
    ReviewPolicy,
    Verdict,
)
from hearth_content.review.schemas import DecisionIn, PolicyIn
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.problems import Problem, forbidden, not_found

SKIP_FIRST_REVIEW = "skip_first_review"
# Who may decide each stage: a moderator (or above) the first, an admin or owner the second.
STAGE_ROLES = {
    1: COMMUNITY_STAFF_ROLES,
    2: frozenset({CommunityRole.owner, CommunityRole.admin}),
}
POLICY_ROLES = STAGE_ROLES[2]


async def get_policy(uow: UnitOfWork, community_id: uuid.UUID) -> ReviewPolicy:
    """The community's policy (review off when none was set)."""
    found = await uow.session.get(ReviewPolicy, community_id)
    return found or ReviewPolicy(community_id=community_id)


async def set_policy(
    *, uow: UnitOfWork, community_id: uuid.UUID, data: PolicyIn, actor: Principal
) -> ReviewPolicy:
    """Set the community's review policy (its owner or admins, or platform staff)."""
    await _require_role(uow, community_id, actor, POLICY_ROLES)
    policy = await uow.session.get(ReviewPolicy, community_id, with_for_update=True)
    if policy is None:
        policy = ReviewPolicy(community_id=community_id)
    policy.mode = data.mode
    policy.partner_second_stage = data.partner_second_stage
    policy.updated_at = utcnow()
    uow.session.add(policy)
    await uow.commit()
    return policy


async def first_stage(
    uow: UnitOfWork, post: Post, actor: Principal, membership: Membership | None
) -> int | None:
    """The first human stage a new submission needs (None: straight out after screening)."""
    policy = await get_policy(uow, post.community_id)
    partner = post.authorship == PostAuthorship.partner
    needs_second = policy.mode == ReviewMode.two_stages or (partner and policy.partner_second_stage)
    if actor.is_staff or (membership is not None and membership.role in COMMUNITY_STAFF_ROLES):
        # Staff skip review; partner content still needs the second stage when asked.
        return 2 if partner and policy.partner_second_stage else None
    if policy.mode == ReviewMode.off and not needs_second:
        return None
    skips_first = membership is not None and SKIP_FIRST_REVIEW in (membership.privileges or [])
    if skips_first:
        return 2 if needs_second else None
    return 1


def needs_review(post: Post) -> bool:
    """Whether a screened post must wait for human review."""
    return post.review_stage is not None


async def claim(*, uow: UnitOfWork, post_id: uuid.UUID, actor: Principal) -> ReviewClaim:
    """Claim a post in review so no other reviewer works on it until the claim expires."""
    await _in_review(uow, post_id, actor)
    now = utcnow()
    found = await uow.session.get(ReviewClaim, post_id, with_for_update=True)
    if found is not None and found.reviewer_id != actor.subject and _aware(found.expires_at) > now:
        raise Problem(409, "review-claimed", "Conflict", "another reviewer has claimed this post")
    found = found or ReviewClaim(post_id=post_id, reviewer_id=actor.subject, expires_at=now)
    found.reviewer_id = actor.subject
    found.expires_at = now + CLAIM_TTL
    uow.session.add(found)
    await uow.commit()
    return found


async def release_claim(*, uow: UnitOfWork, post_id: uuid.UUID, actor: Principal) -> None:
    """Give up one's claim on a post."""
    found = await uow.session.get(ReviewClaim, post_id, with_for_update=True)
    if found is None or found.reviewer_id != actor.subject:
        raise not_found("claim", post_id)
    await uow.session.delete(found)
    await uow.commit()


async def decide(
    *, uow: UnitOfWork, post_id: uuid.UUID, data: DecisionIn, actor: Principal
) -> ReviewDecision:
    """Decide the post's current stage; commits."""
    decision = await _decide(uow, post_id, data, actor)
    await uow.commit()
    return decision


async def decide_many(
    *,
    uow: UnitOfWork,
    community_id: uuid.UUID,
    post_ids: list[uuid.UUID],
    data: DecisionIn,
    actor: Principal,
) -> tuple[list[uuid.UUID], dict[str, str]]:
    """Bulk approve/reject: each post on its own savepoint; the refused ones say why."""
    await _require_role(uow, community_id, actor, STAGE_ROLES[1])
    decided: list[uuid.UUID] = []
    refused: dict[str, str] = {}
    for post_id in dict.fromkeys(post_ids):
        try:
            async with uow.session.begin_nested():
                post = await uow.session.get(Post, post_id)
                if post is None or post.community_id != community_id:
                    raise not_found("post", post_id)
                await _decide(uow, post_id, data, actor)
            decided.append(post_id)
        except Problem as problem:
            refused[str(post_id)] = problem.detail or problem.title
    await uow.commit()
    return decided, refused


async def resubmit(
    *, uow: UnitOfWork, post_id: uuid.UUID, title: str | None, body: str | None, actor: Principal
) -> Post:
    """The author revises a rejected post; it goes back to screening, then review (new round)."""
    post = await uow.session.get(Post, post_id, with_for_update=True)
    if post is None or post.author_id != actor.subject:
        raise not_found("post", post_id)
    if post.status != PostStatus.rejected:
        raise Problem(409, "not-rejected", "Conflict", "only a rejected post can be resubmitted")
    membership = await guards.writer(uow, post.community_id, actor)
    if title is not None:
        post.title = title
    if body is not None:
        post.body = body
    now = utcnow()
    post.status = PostStatus.pending_review
    # A new round: the last rejection (and the queue entry an appeal could lift) is history.
    post.rejection_reason = None
    post.moderation_case_id = None
    post.review_round += 1
    post.review_stage = await first_stage(uow, post, actor, membership)
    post.submitted_at = now
    uow.session.add(post)
    await posts.record_submitted(uow, post)
    await uow.record(
        PostRevised(
            post_id=post.id,
            community_id=post.community_id,
            author_id=post.author_id,
            column_id=await calendar.column_of(uow, post.id),
            round=post.review_round,
            revised_at=now,
        ),
        subject=str(post.id),
    )
    await uow.commit()
    return post


async def queue(
    *,
    uow: UnitOfWork,
    community_id: uuid.UUID,
    actor: Principal,
    stage: int | None,
    older_than: timedelta | None,
    limit: int,
    column_id: uuid.UUID | None = None,
) -> list[tuple[Post, ReviewClaim | None]]:
    """Posts waiting for review in a community, oldest first, with their claims."""
    await _require_role(uow, community_id, actor, STAGE_ROLES[1])
    stmt = (
        select(Post, ReviewClaim)
        .join(ReviewClaim, col(ReviewClaim.post_id) == col(Post.id), isouter=True)
        .where(col(Post.community_id) == community_id, col(Post.status) == PostStatus.in_review)
        .order_by(col(Post.submitted_at), col(Post.id))
        .limit(limit)
    )
    if stage is not None:
        stmt = stmt.where(col(Post.review_stage) == stage)
    if column_id is not None:
        booked = select(Booking.post_id).where(Booking.column_id == column_id)
        stmt = stmt.where(col(Post.id).in_(booked))
    if older_than is not None:
        stmt = stmt.where(col(Post.submitted_at) <= utcnow() - older_than)
    now = utcnow()
    rows = (await uow.session.exec(stmt)).all()
    return [(p, c if c is not None and _aware(c.expires_at) > now else None) for p, c in rows]


async def history(*, uow: UnitOfWork, post_id: uuid.UUID, actor: Principal) -> list[ReviewDecision]:
    """A post's whole review history: for staff and for its author."""
    post = await uow.session.get(Post, post_id)
    if post is None:
        raise not_found("post", post_id)
    if not actor.is_staff and post.author_id != actor.subject:
        membership = await posts._active_membership(uow, post.community_id, actor.subject)
        if membership is None or membership.role not in COMMUNITY_STAFF_ROLES:
            raise not_found("post", post_id)
    stmt = (
        select(ReviewDecision)
        .where(ReviewDecision.post_id == post_id)
        .order_by(col(ReviewDecision.decided_at), col(ReviewDecision.id))
    )
    return list((await uow.session.exec(stmt)).all())


# --- Helpers ----------------------------------------------------------------------------------


async def _decide(
    uow: UnitOfWork, post_id: uuid.UUID, data: DecisionIn, actor: Principal
) -> ReviewDecision:
    post = await _in_review(uow, post_id, actor, lock=True)
    stage = post.review_stage or 1
    now = utcnow()
    claimed = await uow.session.get(ReviewClaim, post_id, with_for_update=True)
    if (
        claimed is not None
        and claimed.reviewer_id != actor.subject
        and _aware(claimed.expires_at) > now
    ):
        raise Problem(409, "review-claimed", "Conflict", "another reviewer has claimed this post")
    earlier = (
        await uow.session.exec(
            select(ReviewDecision).where(
                ReviewDecision.post_id == post_id,
                ReviewDecision.round == post.review_round,
                ReviewDecision.reviewer_id == actor.subject,
            )
        )
    ).first()
    if earlier is not None:
        raise Problem(409, "same-reviewer", "Conflict", "you decided the other stage of this post")
    decision = ReviewDecision(
        post_id=post.id,
        community_id=post.community_id,
        round=post.review_round,
        stage=stage,
        reviewer_id=actor.subject,
        verdict=data.verdict,
        note=data.note,
        decided_at=now,
    )
    uow.session.add(decision)
    if claimed is not None:
        await uow.session.delete(claimed)
    next_stage: int | None = None
    column = await calendar.column_of(uow, post.id)
    if data.verdict == Verdict.reject:
        post.status = PostStatus.rejected
        post.review_stage = None
        post.rejection_reason = data.note  # what its author reads on the post
        await uow.record(
            PostRejected(
                post_id=post.id,
                community_id=post.community_id,
                author_id=post.author_id,
                column_id=column,
                reviewer_id=actor.subject,
                round=post.review_round,
                stage=stage,
                reason=data.note,
                rejected_at=now,
            ),
            subject=str(post.id),
        )
    elif stage == 1 and await _needs_second(uow, post):
        next_stage = post.review_stage = 2
    else:
        post.review_stage = None
        await uow.record(
            PostApproved(
                post_id=post.id,
                community_id=post.community_id,
                author_id=post.author_id,
                column_id=column,
                reviewer_id=actor.subject,
                round=post.review_round,
                publish_at=post.publish_at,
                approved_at=now,
            ),
            subject=str(post.id),
        )
        # Published now, or scheduled for its slot (the leased publisher releases it then).
        await posts.release(uow, post, now, post.screening_id)
    uow.session.add(post)
    await uow.record(
        PostReviewDecided(
            post_id=post.id,
            community_id=post.community_id,
            author_id=post.author_id,
            column_id=column,
            reviewer_id=actor.subject,
            round=post.review_round,
            stage=stage,
            verdict=data.verdict,
            note=data.note,
            next_stage=next_stage,
            decided_at=now,
        ),
        subject=str(post.id),
    )
    await uow.session.flush()
    return decision


async def _needs_second(uow: UnitOfWork, post: Post) -> bool:
    policy = await get_policy(uow, post.community_id)
    partner = post.authorship == PostAuthorship.partner
    return policy.mode == ReviewMode.two_stages or (partner and policy.partner_second_stage)


async def _in_review(
    uow: UnitOfWork, post_id: uuid.UUID, actor: Principal, *, lock: bool = False
) -> Post:
    post = await uow.session.get(Post, post_id, with_for_update=lock)
    if post is None:
        raise not_found("post", post_id)
    # Who may review first, the post's state after: an outsider must not learn that a post of
    # a private community exists or is published, nor a member outside the review team.
    await _may_decide(uow, post, actor)
    if post.status != PostStatus.in_review:
        raise Problem(409, "not-in-review", "Conflict", f"the post is {post.status}, not in review")
    return post


async def _may_decide(uow: UnitOfWork, post: Post, actor: Principal) -> None:
    if post.author_id == actor.subject:
        raise forbidden("authors do not review their own posts")
    stage = post.review_stage or 1
    if actor.is_staff:
        return
    membership = await posts._active_membership(uow, post.community_id, actor.subject)
    if membership is None:
        raise not_found("post", post.id)  # do not reveal posts in review to outsiders
    if membership.role not in STAGE_ROLES[stage]:
        raise forbidden(f"stage {stage} is decided by: {', '.join(sorted(STAGE_ROLES[stage]))}")


async def _require_role(
    uow: UnitOfWork, community_id: uuid.UUID, actor: Principal, roles: frozenset[CommunityRole]
) -> None:
    if actor.is_staff:
        return
    _, membership = await posts._community_access(uow, community_id, actor)
    if membership is None or membership.role not in roles:
        raise forbidden(f"only {', '.join(sorted(roles))} of this community may do this")


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
