"""Moderation's use cases: keyword-only functions over a unit of work.

Functions called by routes only read; `screen_post` is called by an event consumer and never
commits, because the kernel commits its changes together with the inbox row.
"""

from __future__ import annotations

import uuid

from sqlmodel import col, select

from hearth_moderation.events import ScreeningCompleted
from hearth_moderation.models import Screening, ScreeningDecision, TargetType
from hearth_moderation.terms import TermMatcher
from servicekit.deps import UnitOfWork
from servicekit.pagination import PageParams, after_id
from servicekit.problems import not_found


async def screen_post(
    *,
    uow: UnitOfWork,
    post_id: uuid.UUID,
    community_id: uuid.UUID,
    author_id: uuid.UUID | None,
    title: str,
    body: str,
    matcher: TermMatcher,
    source_event_id: uuid.UUID | None = None,
) -> Screening | None:
    """Screen a submitted post once and announce the decision; None if it was screened already."""
    existing = await _screening_of(uow, TargetType.post, post_id)
    if existing is not None:
        return None  # a redelivered or re-announced submission must not screen (or announce) twice
    matches = matcher.find(f"{title}\n{body}")
    reasons = sorted({f"banned_term:{m.category}" for m in matches})
    screening = Screening(
        target_type=TargetType.post,
        target_id=post_id,
        community_id=community_id,
        author_id=author_id,
        decision=ScreeningDecision.held if matches else ScreeningDecision.approved,
        matched_terms=[m.term for m in matches],
        reasons=reasons,
        source_event_id=source_event_id,
    )
    # If a concurrent delivery inserts the same target first, the unique constraint fails this
    # transaction, the message is retried, and the retry finds the screening above.
    uow.session.add(screening)
    await uow.record(
        ScreeningCompleted(
            screening_id=screening.id,
            target_type=screening.target_type,
            target_id=post_id,
            community_id=community_id,
            author_id=author_id,
            decision=screening.decision,
            reasons=reasons,
            screened_at=screening.screened_at,
        ),
        subject=str(post_id),
    )
    return screening


async def get_screening(*, uow: UnitOfWork, screening_id: uuid.UUID) -> Screening:
    """One screening."""
    screening = await uow.session.get(Screening, screening_id)
    if screening is None:
        raise not_found("screening", screening_id)
    return screening


async def list_screenings(
    *,
    uow: UnitOfWork,
    community_id: uuid.UUID | None,
    decision: ScreeningDecision | None,
    page: PageParams,
) -> list[Screening]:
    """Screenings, newest first (limit+1 rows), optionally of one community or decision."""
    stmt = select(Screening).order_by(col(Screening.id).desc()).limit(page.limit + 1)
    if community_id is not None:
        stmt = stmt.where(Screening.community_id == community_id)
    if decision is not None:
        stmt = stmt.where(col(Screening.decision) == decision)
    if page.after:
        stmt = stmt.where(col(Screening.id) < after_id(page))
    return list((await uow.session.exec(stmt)).all())


async def _screening_of(
    uow: UnitOfWork, target_type: str, target_id: uuid.UUID
) -> Screening | None:
    stmt = select(Screening).where(
        Screening.target_type == target_type, Screening.target_id == target_id
    )
    return (await uow.session.exec(stmt)).first()
