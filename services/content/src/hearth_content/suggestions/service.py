"""Suggestion box use cases: ideas, votes, the status workflow, merges, official replies.

Functions called by routes commit. A vote and a status change both lock the idea's row first
(`FOR UPDATE`; SQLite has one writer at a time), so a vote never slips past a merge: it lands
on the idea before the merge carries it over, or it meets the merged status and is refused.
One vote per member per idea is the unique constraint (suggestion_id, voter_id).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, func
from sqlalchemy import select as sa_select
from sqlmodel import col, select

from hearth_content import guards
from hearth_content import service as posts
from hearth_content.events import SuggestionAccepted
from hearth_content.models import COMMUNITY_STAFF_ROLES, Membership
from hearth_content.suggestions.events import (
    VOTERS_PER_EVENT,
    SuggestionCreated,
    SuggestionReplied,
    SuggestionStatusChanged,
    SuggestionVoted,
)
from hearth_content.suggestions.models import (
    OPEN_STATUSES,
    TRANSITIONS,
    StatusChangeRequest,
    Suggestion,
    SuggestionCreate,
    SuggestionReply,
    SuggestionStatus,
    SuggestionVote,
)
from servicekit.db import affected_rows, upsert_insert
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow, uuid7
from servicekit.pagination import PageParams, after_id
from servicekit.problems import Problem, conflict, forbidden, not_found

REPLIES_MAX = 200


# --- Who may do what --------------------------------------------------------------------------


async def _gate(uow: UnitOfWork, community_id: uuid.UUID, actor: Principal) -> Membership:
    """The one write gate of the suggestion box: content's, with 404 for strangers (guards.py)."""
    return await guards.visible_writer(uow, community_id, actor)


async def _team(uow: UnitOfWork, community_id: uuid.UUID, actor: Principal) -> None:
    """Platform staff, or the community's owner, admins and moderators, in a live community."""
    if actor.is_staff:
        community, _ = await posts._community_access(uow, community_id, actor)
        if community.archived:
            raise Problem(
                409, "community-archived", "Conflict", "the community is archived (read-only)"
            )
        return
    membership = await _gate(uow, community_id, actor)
    if membership.role not in COMMUNITY_STAFF_ROLES:
        raise forbidden("only the community's team may do this to an idea")


async def _reader(uow: UnitOfWork, community_id: uuid.UUID, actor: Principal) -> None:
    """Active members of the community and platform staff read its suggestion box."""
    _, membership = await posts._community_access(uow, community_id, actor)
    if membership is None and not actor.is_staff:
        raise forbidden("only members of this community may read its suggestion box")


# --- Ideas ------------------------------------------------------------------------------------


async def create_suggestion(
    *, uow: UnitOfWork, community_id: uuid.UUID, data: SuggestionCreate, actor: Principal
) -> Suggestion:
    """Put an idea in the community's suggestion box (active, unmuted members)."""
    await _gate(uow, community_id, actor)
    suggestion = Suggestion(
        community_id=community_id, author_id=actor.subject, title=data.title, body=data.body
    )
    uow.session.add(suggestion)
    await uow.record(
        SuggestionCreated(
            suggestion_id=suggestion.id,
            community_id=community_id,
            author_id=actor.subject,
            title=suggestion.title,
            created_at=suggestion.created_at,
        ),
        subject=str(suggestion.id),
    )
    await uow.commit()
    return suggestion


async def get_suggestion(
    *, uow: UnitOfWork, suggestion_id: uuid.UUID, actor: Principal
) -> Suggestion:
    """An idea the actor may read (404 for outsiders)."""
    suggestion = await uow.session.get(Suggestion, suggestion_id)
    if suggestion is None:
        raise not_found("suggestion", suggestion_id)
    try:
        await _reader(uow, suggestion.community_id, actor)
    except Problem:
        raise not_found("suggestion", suggestion_id) from None
    return suggestion


async def list_suggestions(
    *,
    uow: UnitOfWork,
    community_id: uuid.UUID,
    actor: Principal,
    status: SuggestionStatus | None,
    page: PageParams,
) -> list[Suggestion]:
    """A community's ideas, newest first (limit+1 rows), optionally of one status."""
    await _reader(uow, community_id, actor)
    stmt = (
        select(Suggestion)
        .where(col(Suggestion.community_id) == community_id)
        .order_by(col(Suggestion.id).desc())
        .limit(page.limit + 1)
    )
    if status is not None:
        stmt = stmt.where(col(Suggestion.status) == status)
    if page.after:
        stmt = stmt.where(col(Suggestion.id) < after_id(page))
    return list((await uow.session.exec(stmt)).all())


async def voted_by(
    uow: UnitOfWork, *, suggestion_ids: list[uuid.UUID], voter: uuid.UUID
) -> set[uuid.UUID]:
    """Which of these ideas the voter has voted for."""
    if not suggestion_ids:
        return set()
    stmt = select(SuggestionVote.suggestion_id).where(
        col(SuggestionVote.suggestion_id).in_(suggestion_ids),
        col(SuggestionVote.voter_id) == voter,
    )
    return set((await uow.session.exec(stmt)).all())


# --- Votes ------------------------------------------------------------------------------------


async def _locked(uow: UnitOfWork, suggestion_id: uuid.UUID) -> Suggestion:
    found = await uow.session.get(
        Suggestion, suggestion_id, with_for_update=True, populate_existing=True
    )
    if found is None:
        raise not_found("suggestion", suggestion_id)
    return found


async def _recount(uow: UnitOfWork, suggestion: Suggestion) -> None:
    """The idea's vote_count from its vote rows (distinct voters by the unique constraint)."""
    count = sa_select(func.count()).where(col(SuggestionVote.suggestion_id) == suggestion.id)
    suggestion.vote_count = int((await uow.session.execute(count)).scalar_one())
    uow.session.add(suggestion)


async def vote(
    *, uow: UnitOfWork, suggestion_id: uuid.UUID, voted: bool, actor: Principal
) -> Suggestion:
    """Vote for an idea, or take the vote back; idempotent, one vote per member."""
    found = await uow.session.get(Suggestion, suggestion_id)
    if found is None:
        raise not_found("suggestion", suggestion_id)
    try:
        await _gate(uow, found.community_id, actor)
    except Problem as problem:
        if problem.status == 404:  # a stranger to a private community: not even its id
            raise not_found("suggestion", suggestion_id) from None
        raise
    suggestion = await _locked(uow, suggestion_id)
    if suggestion.status not in OPEN_STATUSES:
        extra: dict[str, Any] = {"current": str(suggestion.status)}
        if suggestion.merged_into_id is not None:
            extra["merged_into_id"] = str(suggestion.merged_into_id)
        raise conflict(
            "suggestion-closed", f"the idea is {suggestion.status}: it takes no votes", **extra
        )
    if voted:
        result = await uow.session.execute(
            upsert_insert(uow.session, SuggestionVote)
            .values(
                id=uuid7(), suggestion_id=suggestion.id, voter_id=actor.subject, created_at=utcnow()
            )
            .on_conflict_do_nothing(index_elements=["suggestion_id", "voter_id"])
        )
    else:
        result = await uow.session.execute(
            delete(SuggestionVote).where(
                col(SuggestionVote.suggestion_id) == suggestion.id,
                col(SuggestionVote.voter_id) == actor.subject,
            )
        )
    if affected_rows(result):
        await _recount(uow, suggestion)
        await uow.record(
            SuggestionVoted(
                suggestion_id=suggestion.id,
                community_id=suggestion.community_id,
                voter_id=actor.subject,
                voted=voted,
                votes=suggestion.vote_count,
                at=utcnow(),
            ),
            subject=str(suggestion.id),
        )
    await uow.commit()
    return suggestion


# --- The workflow -----------------------------------------------------------------------------


async def change_status(
    *, uow: UnitOfWork, suggestion_id: uuid.UUID, data: StatusChangeRequest, actor: Principal
) -> Suggestion:
    """Move an idea along its workflow (the community's team); author and voters are told."""
    found = await get_suggestion(uow=uow, suggestion_id=suggestion_id, actor=actor)
    await _team(uow, found.community_id, actor)
    target: Suggestion | None = None
    if data.status == SuggestionStatus.merged:
        assert data.merged_into_id is not None
        if data.merged_into_id == suggestion_id:
            raise conflict("merge-into-itself", "an idea cannot be merged into itself")
        # Both rows locked in id order, so two crossing merges cannot deadlock.
        first, second = sorted([suggestion_id, data.merged_into_id])
        locked = {first: await _locked(uow, first), second: await _locked(uow, second)}
        suggestion, target = locked[suggestion_id], locked[data.merged_into_id]
        if target.community_id != suggestion.community_id:
            raise not_found("suggestion", data.merged_into_id)
    else:
        suggestion = await _locked(uow, suggestion_id)
    allowed = TRANSITIONS[suggestion.status]
    if data.status not in allowed:
        names = ", ".join(allowed) or "none: it is final"
        raise conflict(
            "invalid-transition",
            f"a {suggestion.status} idea cannot become {data.status}; allowed: {names}",
            current=str(suggestion.status),
            allowed=[str(s) for s in allowed],
        )
    if target is not None and target.status not in OPEN_STATUSES:
        raise conflict(
            "merge-target-closed",
            f"the idea to merge into is {target.status}; merge only into an open idea",
        )
    now = utcnow()
    before = suggestion.status
    suggestion.status = data.status
    suggestion.reason = data.reason
    suggestion.merged_into_id = data.merged_into_id
    suggestion.status_changed_at = now
    uow.session.add(suggestion)
    if target is not None:
        await _carry_votes(uow, suggestion, target)
    await _announce(uow, suggestion, before, actor, now)
    if data.status == SuggestionStatus.accepted:
        await uow.record(
            SuggestionAccepted(
                suggestion_id=suggestion.id,
                community_id=suggestion.community_id,
                author_id=suggestion.author_id,
                accepted_at=now,
            ),
            subject=str(suggestion.id),
        )
    await uow.commit()
    return suggestion


async def _voters(uow: UnitOfWork, suggestion_id: uuid.UUID) -> list[uuid.UUID]:
    stmt = (
        select(SuggestionVote.voter_id)
        .where(col(SuggestionVote.suggestion_id) == suggestion_id)
        .order_by(col(SuggestionVote.id))
    )
    return list((await uow.session.exec(stmt)).all())


async def _carry_votes(uow: UnitOfWork, source: Suggestion, target: Suggestion) -> None:
    """Give the target a vote from each voter of the source who has not voted for it already."""
    already = set(await _voters(uow, target.id))
    now = utcnow()
    carried = [
        {
            "id": uuid7(),
            "suggestion_id": target.id,
            "voter_id": voter,
            "created_at": now,
            "carried_from_id": source.id,
        }
        for voter in await _voters(uow, source.id)
        if voter not in already
    ]
    for start in range(0, len(carried), 1000):
        await uow.session.execute(
            upsert_insert(uow.session, SuggestionVote)
            .values(carried[start : start + 1000])
            .on_conflict_do_nothing(index_elements=["suggestion_id", "voter_id"])
        )
    await _recount(uow, target)


async def _announce(
    uow: UnitOfWork, suggestion: Suggestion, before: str, actor: Principal, now: Any
) -> None:
    """One status_changed event per VOTERS_PER_EVENT voters (the author rides on the first)."""
    voters = [v for v in await _voters(uow, suggestion.id) if v != suggestion.author_id]
    chunks = [voters[i : i + VOTERS_PER_EVENT] for i in range(0, len(voters), VOTERS_PER_EVENT)]
    chunks = chunks or [[]]
    for batch, chunk in enumerate(chunks):
        await uow.record(
            SuggestionStatusChanged(
                suggestion_id=suggestion.id,
                community_id=suggestion.community_id,
                author_id=suggestion.author_id,
                title=suggestion.title,
                from_status=str(before),
                status=str(suggestion.status),
                reason=suggestion.reason,
                merged_into_id=suggestion.merged_into_id,
                actor_id=actor.subject,
                voters=suggestion.vote_count,
                voter_ids=chunk,
                batch=batch,
                batches=len(chunks),
                changed_at=now,
            ),
            subject=str(suggestion.id),
        )


# --- Official replies -------------------------------------------------------------------------


async def reply(
    *, uow: UnitOfWork, suggestion_id: uuid.UUID, body: str, actor: Principal
) -> SuggestionReply:
    """Reply officially to an idea (the community's team)."""
    suggestion = await get_suggestion(uow=uow, suggestion_id=suggestion_id, actor=actor)
    await _team(uow, suggestion.community_id, actor)
    answer = SuggestionReply(suggestion_id=suggestion.id, author_id=actor.subject, body=body)
    uow.session.add(answer)
    await uow.record(
        SuggestionReplied(
            suggestion_id=suggestion.id,
            reply_id=answer.id,
            community_id=suggestion.community_id,
            author_id=suggestion.author_id,
            replier_id=actor.subject,
            replied_at=answer.created_at,
        ),
        subject=str(suggestion.id),
    )
    await uow.commit()
    return answer


async def list_replies(
    *, uow: UnitOfWork, suggestion_id: uuid.UUID, actor: Principal
) -> list[SuggestionReply]:
    """An idea's official replies, oldest first."""
    await get_suggestion(uow=uow, suggestion_id=suggestion_id, actor=actor)
    stmt = (
        select(SuggestionReply)
        .where(col(SuggestionReply.suggestion_id) == suggestion_id)
        .order_by(col(SuggestionReply.id))
        .limit(REPLIES_MAX)
    )
    return list((await uow.session.exec(stmt)).all())
