"""Poll use cases: create, read with results, vote (once, or changed until close), close.

One vote per member per poll holds under any concurrency and on any number of replicas: a
first vote is `INSERT … ON CONFLICT DO NOTHING` into `poll_ballots` (primary key poll, member),
and only the insert that took the row writes choices; every other concurrent first vote sees no
row inserted and is either refused (409 `already-voted`) or, when the poll allows changes,
takes the ballot's row lock and replaces its choices. On PostgreSQL the losing inserts wait for
the winner's commit; on SQLite every write transaction is `BEGIN IMMEDIATE` (one writer).
A vote holds a share lock on the poll row, and closing takes its update lock, so no vote lands
after the close that refused it.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, func
from sqlmodel import col, select

from hearth_content import guards
from hearth_content import service as posts
from hearth_content.calendar import service as calendar
from hearth_content.calendar.models import ContentColumn
from hearth_content.events import PollClosed, PollCreated, PollVoted
from hearth_content.models import COMMUNITY_STAFF_ROLES, Membership, MembershipStatus
from hearth_content.polls.models import (
    Poll,
    PollBallot,
    PollChoice,
    PollCreate,
    PollOption,
    PollOptionPublic,
    PollPublic,
    ResultsVisibility,
)
from servicekit.db import affected_rows, upsert_insert
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.pagination import PageParams, after_id
from servicekit.problems import Problem, conflict, forbidden, not_found
from servicekit.runtime import ServiceRuntime


async def create_poll(
    *, uow: UnitOfWork, community_id: uuid.UUID, data: PollCreate, actor: Principal
) -> Poll:
    """Open a poll in a community as a member who may write there."""
    await posts._community_access(uow, community_id, actor)  # 404 for a private community
    await guards.writer(uow, community_id, actor)
    column_id = data.column_id
    if data.post_id is not None:
        post = await posts.get_post(uow=uow, post_id=data.post_id, actor=actor)
        if post.community_id != community_id:
            raise not_found("post", data.post_id)
        if post.author_id != actor.subject and not await posts._runs_community(uow, post, actor):
            raise forbidden("only the post's author and staff may attach a poll to it")
        column_id = column_id or await calendar.column_of(uow, post.id)
    if column_id is not None:
        column = await uow.session.get(ContentColumn, column_id)
        if column is None or column.community_id != community_id:
            raise not_found("column", column_id)
    poll = Poll(
        community_id=community_id,
        author_id=actor.subject,
        post_id=data.post_id,
        column_id=column_id,
        question=data.question,
        multiple=data.multiple,
        max_choices=(data.max_choices or len(data.options)) if data.multiple else 1,
        anonymous=data.anonymous,
        results=data.results,
        allow_change=data.allow_change,
        closes_at=data.closes_at,
    )
    uow.session.add(poll)
    for position, label in enumerate(data.options):
        uow.session.add(PollOption(poll_id=poll.id, position=position, label=label))
    await uow.record(
        PollCreated(
            poll_id=poll.id,
            community_id=community_id,
            author_id=actor.subject,
            column_id=column_id,
            post_id=data.post_id,
            multiple=poll.multiple,
            anonymous=poll.anonymous,
            option_count=len(data.options),
            closes_at=poll.closes_at,
            created_at=poll.created_at,
        ),
        subject=str(poll.id),
    )
    await uow.commit()
    return poll


async def get_poll(*, uow: UnitOfWork, poll_id: uuid.UUID, actor: Principal) -> Poll:
    """A poll the actor may read (active members of its community, staff); else 404."""
    poll = await uow.session.get(Poll, poll_id)
    if poll is None:
        raise not_found("poll", poll_id)
    if not actor.is_staff:
        membership = await posts._active_membership(uow, poll.community_id, actor.subject)
        if membership is None:
            raise not_found("poll", poll_id)
    return poll


async def list_polls(
    *, uow: UnitOfWork, community_id: uuid.UUID, actor: Principal, page: PageParams
) -> list[Poll]:
    """A community's polls, newest first (limit+1 rows), for its members and staff."""
    _, membership = await posts._community_access(uow, community_id, actor)
    if membership is None and not actor.is_staff:
        raise forbidden("only members of this community may list its polls")
    stmt = (
        select(Poll)
        .where(col(Poll.community_id) == community_id)
        .order_by(col(Poll.id).desc())
        .limit(page.limit + 1)
    )
    if page.after:
        stmt = stmt.where(col(Poll.id) < after_id(page))
    return list((await uow.session.exec(stmt)).all())


def is_closed(poll: Poll, now: datetime | None = None) -> bool:
    """Closed by hand, or its close time has come (even before the closer announced it)."""
    if poll.closed_at is not None:
        return True
    return poll.closes_at is not None and guards.aware(poll.closes_at) <= (now or utcnow())


async def vote(
    *, uow: UnitOfWork, poll_id: uuid.UUID, option_ids: list[uuid.UUID], actor: Principal
) -> Poll:
    """Cast the actor's one vote, or change it until close when the poll allows that."""
    await get_poll(uow=uow, poll_id=poll_id, actor=actor)
    # A share lock: votes run side by side; a close waits for them (and they for it).
    poll = await uow.session.get(
        Poll, poll_id, with_for_update={"read": True}, populate_existing=True
    )
    assert poll is not None
    await guards.writer(uow, poll.community_id, actor)
    now = utcnow()
    if is_closed(poll, now):
        raise conflict("poll-closed", "the poll is closed")
    chosen = await _valid_choices(uow, poll, option_ids)
    inserted = await uow.session.execute(
        upsert_insert(uow.session, PollBallot)
        .values(poll_id=poll.id, member_id=actor.subject, ballot_id=uuid.uuid4(), voted_at=now)
        .on_conflict_do_nothing(index_elements=["poll_id", "member_id"])
    )
    changed = affected_rows(inserted) == 0
    ballot = await uow.session.get(
        PollBallot,
        (poll.id, actor.subject),
        with_for_update=changed,
        populate_existing=True,
    )
    assert ballot is not None
    if changed:
        if not poll.allow_change:
            raise conflict("already-voted", "you have already voted in this poll")
        held = set(await _my_choices(uow, poll.id, actor.subject))
        if held == set(chosen):
            return poll  # the same vote again: nothing changes, nothing announced
        await uow.session.execute(
            delete(PollChoice).where(
                col(PollChoice.poll_id) == poll.id, col(PollChoice.member_id) == actor.subject
            )
        )
        ballot.changed_at = now
        uow.session.add(ballot)
    for option_id in chosen:
        uow.session.add(PollChoice(poll_id=poll.id, member_id=actor.subject, option_id=option_id))
    await uow.record(
        PollVoted(
            poll_id=poll.id,
            community_id=poll.community_id,
            author_id=poll.author_id,
            column_id=poll.column_id,
            anonymous=poll.anonymous,
            voter_id=None if poll.anonymous else actor.subject,
            ballot_id=ballot.ballot_id,
            changed=changed,
            option_ids=chosen,
            voted_at=now,
        ),
        subject=str(poll.id),
    )
    await uow.commit()
    return poll


async def close_poll(*, uow: UnitOfWork, poll_id: uuid.UUID, actor: Principal) -> Poll:
    """Close a poll now: its author, the community's staff, platform staff (idempotent)."""
    await get_poll(uow=uow, poll_id=poll_id, actor=actor)
    poll = await uow.session.get(Poll, poll_id, with_for_update=True, populate_existing=True)
    assert poll is not None
    if poll.author_id != actor.subject and not await _is_staff(uow, poll, actor):
        raise forbidden("only the poll's author and staff may close it")
    if poll.closed_at is not None:
        return poll
    await _close(uow, poll, utcnow(), actor.subject)
    await uow.commit()
    return poll


async def close_due(runtime: ServiceRuntime, *, now: datetime, batch: int = 100) -> int:
    """Close polls whose close time has come and announce each once; the number closed.

    Rows are claimed with `FOR UPDATE SKIP LOCKED` (PostgreSQL), so replicas running this at
    once close different polls; SQLite has one writer at a time.
    """
    async with runtime.db.session() as session:
        uow = UnitOfWork(session, runtime)
        due = (
            select(Poll)
            .where(col(Poll.closed_at).is_(None), col(Poll.closes_at) <= now)
            .order_by(col(Poll.closes_at), col(Poll.id))
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
        polls = list((await session.exec(due)).all())
        for poll in polls:
            assert poll.closes_at is not None
            await _close(uow, poll, guards.aware(poll.closes_at), None)
        await uow.commit()
    return len(polls)


async def public(*, uow: UnitOfWork, poll: Poll, actor: Principal) -> PollPublic:
    """The poll as this caller may see it: results only when its visibility allows."""
    options = list(
        (
            await uow.session.exec(
                select(PollOption)
                .where(col(PollOption.poll_id) == poll.id)
                .order_by(col(PollOption.position))
            )
        ).all()
    )
    mine = await _my_choices(uow, poll.id, actor.subject)
    closed = is_closed(poll)
    staff = await _is_staff(uow, poll, actor)
    visible = staff or (
        poll.results != ResultsVisibility.staff
        and (closed or (poll.results == ResultsVisibility.on_vote and bool(mine)))
    )
    out = [PollOptionPublic(id=o.id, label=o.label) for o in options]
    total: int | None = None
    if visible:
        counts = dict(
            (
                await uow.session.exec(
                    select(PollChoice.option_id, func.count())
                    .where(col(PollChoice.poll_id) == poll.id)
                    .group_by(col(PollChoice.option_id))
                )
            ).all()
        )
        voters: dict[uuid.UUID, list[uuid.UUID]] = {o.id: [] for o in options}
        if not poll.anonymous:
            rows = await uow.session.exec(
                select(PollChoice.option_id, PollChoice.member_id)
                .where(col(PollChoice.poll_id) == poll.id)
                .order_by(col(PollChoice.member_id))
            )
            for option_id, member_id in rows.all():
                voters.setdefault(option_id, []).append(member_id)
        for o in out:
            o.votes = int(counts.get(o.id, 0))
            o.voters = None if poll.anonymous else voters.get(o.id, [])
        total = int(
            (
                await uow.session.exec(
                    select(func.count()).where(col(PollBallot.poll_id) == poll.id)
                )
            ).one()
        )
    return PollPublic(
        id=poll.id,
        community_id=poll.community_id,
        author_id=poll.author_id,
        post_id=poll.post_id,
        column_id=poll.column_id,
        question=poll.question,
        multiple=poll.multiple,
        max_choices=poll.max_choices,
        anonymous=poll.anonymous,
        results=poll.results,
        allow_change=poll.allow_change,
        closes_at=poll.closes_at,
        closed_at=poll.closed_at,
        created_at=poll.created_at,
        is_closed=closed,
        options=out,
        results_visible=visible,
        total_voters=total,
        my_choices=mine,
    )


# --- Helpers ----------------------------------------------------------------------------------


async def _valid_choices(
    uow: UnitOfWork, poll: Poll, option_ids: list[uuid.UUID]
) -> list[uuid.UUID]:
    """The chosen options, distinct and in the poll's order; 422 when the ballot is invalid."""
    if len(set(option_ids)) != len(option_ids):
        raise Problem(422, "duplicate-choice", "Unprocessable Content", "choose each option once")
    if len(option_ids) > poll.max_choices:
        raise Problem(
            422,
            "too-many-choices",
            "Unprocessable Content",
            f"choose at most {poll.max_choices} option(s)",
            max_choices=poll.max_choices,
        )
    known = list(
        (
            await uow.session.exec(
                select(PollOption.id)
                .where(col(PollOption.poll_id) == poll.id, col(PollOption.id).in_(option_ids))
                .order_by(col(PollOption.position))
            )
        ).all()
    )
    if len(known) != len(option_ids):
        raise Problem(422, "unknown-option", "Unprocessable Content", "not an option of this poll")
    return known


async def _my_choices(uow: UnitOfWork, poll_id: uuid.UUID, member: uuid.UUID) -> list[uuid.UUID]:
    rows = await uow.session.exec(
        select(PollChoice.option_id).where(
            col(PollChoice.poll_id) == poll_id, col(PollChoice.member_id) == member
        )
    )
    return sorted(rows.all())


async def _is_staff(uow: UnitOfWork, poll: Poll, actor: Principal) -> bool:
    """Platform staff, or an active owner/admin/moderator of the poll's community."""
    if actor.is_staff:
        return True
    membership = await uow.session.get(Membership, (poll.community_id, actor.subject))
    return (
        membership is not None
        and membership.status == MembershipStatus.active
        and membership.role in COMMUNITY_STAFF_ROLES
    )


async def _close(uow: UnitOfWork, poll: Poll, at: datetime, by: uuid.UUID | None) -> None:
    poll.closed_at = at
    uow.session.add(poll)
    voters = (
        await uow.session.exec(select(func.count()).where(col(PollBallot.poll_id) == poll.id))
    ).one()
    await uow.record(
        PollClosed(
            poll_id=poll.id,
            community_id=poll.community_id,
            author_id=poll.author_id,
            column_id=poll.column_id,
            closed_by=by,
            voters=int(voters),
            closed_at=at,
        ),
        subject=str(poll.id),
    )
