"""The queue's use cases: open entries, list them with SLA age, claim, assign, decide, bulk.

What a decision does depends on the entry's kind (reports resolve reports, appeals decide the
appeal); those packages sit above the queue and register their decider in app.py
(`on_decision`), so the queue imports none of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_moderation.permissions import require_moderator
from hearth_moderation.queue.events import CaseDecided
from hearth_moderation.queue.models import (
    BulkDecisionRequest,
    BulkDecisionResult,
    Decision,
    DecisionRequest,
    EntryKind,
    EntryStatus,
    QueueEntry,
    QueueEntryPublic,
)
from hearth_moderation.settings import ModerationSettings
from servicekit.db import affected_rows
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.pagination import PageParams, after_id
from servicekit.problems import Problem, conflict, not_found
from servicekit.runtime import runtime_of, settings_of

Decider = Callable[[UnitOfWork, QueueEntry, DecisionRequest, Principal], Awaitable[None]]
_DECIDERS: dict[str, Decider] = {}


def on_decision(kind: EntryKind, decider: Decider) -> None:
    """Register what deciding an entry of this kind does (wired in app.py)."""
    _DECIDERS[str(kind)] = decider


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def public(entry: QueueEntry, *, now: datetime | None = None) -> QueueEntryPublic:
    """An entry as moderators see it, with its age against the SLA."""
    now = now or utcnow()
    end = _aware(entry.resolved_at) if entry.resolved_at else now
    out = QueueEntryPublic.model_validate(entry, from_attributes=True)
    out.age_seconds = max(0.0, (end - _aware(entry.opened_at)).total_seconds())
    out.overdue = entry.status == EntryStatus.open and now > _aware(entry.due_at)
    out.score_detail = list(entry.details.get("score", []))
    return out


async def open_entry(
    uow: UnitOfWork,
    *,
    community_id: uuid.UUID,
    kind: EntryKind,
    item_type: str,
    item_id: uuid.UUID,
    user_id: uuid.UUID | None,
    ref_id: uuid.UUID | None = None,
    reasons: Sequence[str] = (),
) -> QueueEntry:
    """The open entry of this kind for the item, opened now if there is none (caller commits)."""
    found = await open_entry_of(uow, kind=kind, item_type=item_type, item_id=item_id)
    if found is not None:
        merged = sorted({*found.reasons, *reasons})
        if merged != found.reasons:
            found.reasons = merged
            uow.session.add(found)
        return found
    sla = settings_of(runtime_of(uow.session), ModerationSettings).queue_sla_seconds
    now = utcnow()
    # Two first reports racing insert two rows: the partial unique index refuses one (after
    # the other committed), whose savepoint rolls back and which then takes the winner's entry.
    entry = QueueEntry(
        community_id=community_id,
        kind=kind,
        item_type=item_type,
        item_id=item_id,
        user_id=user_id,
        ref_id=ref_id,
        reasons=sorted(set(reasons)),
        opened_at=now,
        due_at=now + timedelta(seconds=sla),
    )
    try:
        async with uow.session.begin_nested():
            uow.session.add(entry)
            await uow.session.flush()
    except IntegrityError as exc:
        found = await open_entry_of(uow, kind=kind, item_type=item_type, item_id=item_id)
        if found is None:
            raise conflict("entry-race", "the queue changed meanwhile; retry") from exc
        return found
    return entry


async def open_entry_of(
    uow: UnitOfWork, *, kind: EntryKind, item_type: str, item_id: uuid.UUID
) -> QueueEntry | None:
    """The open entry of this kind for the item, if any."""
    stmt = select(QueueEntry).where(
        col(QueueEntry.kind) == kind,
        QueueEntry.item_type == item_type,
        QueueEntry.item_id == item_id,
        col(QueueEntry.status) == EntryStatus.open,
    )
    return (await uow.session.exec(stmt)).first()


async def list_entries(
    *,
    uow: UnitOfWork,
    community_id: uuid.UUID,
    kind: EntryKind | None,
    status: EntryStatus | None,
    assignee_id: uuid.UUID | None,
    unassigned: bool,
    overdue: bool,
    page: PageParams,
    actor: Principal,
) -> list[QueueEntry]:
    """A community's queue, oldest first (limit+1 rows), filtered (the team and staff)."""
    await require_moderator(uow, community_id, actor, doing="reading the queue")
    stmt = (
        select(QueueEntry)
        .where(QueueEntry.community_id == community_id)
        .order_by(col(QueueEntry.id))
        .limit(page.limit + 1)
    )
    if kind is not None:
        stmt = stmt.where(col(QueueEntry.kind) == kind)
    if status is not None:
        stmt = stmt.where(col(QueueEntry.status) == status)
    if assignee_id is not None:
        stmt = stmt.where(QueueEntry.assignee_id == assignee_id)
    if unassigned:
        stmt = stmt.where(col(QueueEntry.assignee_id).is_(None))
    if overdue:
        stmt = stmt.where(
            col(QueueEntry.status) == EntryStatus.open, col(QueueEntry.due_at) < utcnow()
        )
    if page.after:
        stmt = stmt.where(col(QueueEntry.id) > after_id(page))
    return list((await uow.session.exec(stmt)).all())


async def entry_row(uow: UnitOfWork, entry_id: uuid.UUID) -> QueueEntry:
    """An entry, or a 404."""
    entry = await uow.session.get(QueueEntry, entry_id)
    if entry is None:
        raise not_found("queue entry", entry_id)
    return entry


async def get_entry(*, uow: UnitOfWork, entry_id: uuid.UUID, actor: Principal) -> QueueEntry:
    """One entry (the community's team and staff)."""
    entry = await entry_row(uow, entry_id)
    await require_moderator(uow, entry.community_id, actor, doing="reading the queue")
    return entry


async def claim(*, uow: UnitOfWork, entry_id: uuid.UUID, actor: Principal) -> QueueEntry:
    """Take an open entry; 409 if someone else holds it."""
    entry = await get_entry(uow=uow, entry_id=entry_id, actor=actor)
    result = await uow.session.execute(
        update(QueueEntry)
        .where(
            col(QueueEntry.id) == entry_id,
            col(QueueEntry.status) == EntryStatus.open,
            or_(
                col(QueueEntry.assignee_id).is_(None),
                col(QueueEntry.assignee_id) == actor.subject,
            ),
        )
        .values(assignee_id=actor.subject, claimed_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if affected_rows(result) != 1:
        raise conflict("entry-taken", "the entry is claimed by someone else or decided")
    await uow.commit()
    await uow.session.refresh(entry)
    return entry


async def assign(
    *, uow: UnitOfWork, entry_id: uuid.UUID, assignee_id: uuid.UUID | None, actor: Principal
) -> QueueEntry:
    """Give an open entry to a moderator of the community (or back to the pool)."""
    entry = await get_entry(uow=uow, entry_id=entry_id, actor=actor)
    if entry.status != EntryStatus.open:
        raise conflict("entry-decided", "the entry is decided")
    if assignee_id is not None:
        assignee = Principal(subject=assignee_id)
        try:
            await require_moderator(uow, entry.community_id, assignee)
        except Problem as exc:
            raise Problem(
                422, "not-a-moderator", "Unprocessable", "assign to the community's team"
            ) from exc
    entry.assignee_id = assignee_id
    entry.claimed_at = utcnow() if assignee_id else None
    uow.session.add(entry)
    await uow.commit()
    return entry


async def decide_entry(
    uow: UnitOfWork, entry: QueueEntry, data: DecisionRequest, actor: Principal
) -> QueueEntry:
    """Decide an open entry inside the caller's transaction (the kind's decider acts)."""
    await require_moderator(uow, entry.community_id, actor, doing="deciding queue entries")
    if entry.assignee_id is not None and entry.assignee_id != actor.subject and not actor.is_staff:
        raise conflict("entry-taken", "the entry is claimed by another moderator")
    now = utcnow()
    result = await uow.session.execute(
        update(QueueEntry)
        .where(col(QueueEntry.id) == entry.id, col(QueueEntry.status) == EntryStatus.open)
        .values(
            status=EntryStatus.resolved,
            resolved_at=now,
            decision=str(data.decision),
            decided_by=actor.subject,
            note=data.note,
            author_reason=data.author_reason,
        )
        .execution_options(synchronize_session=False)
    )
    if affected_rows(result) != 1:
        raise conflict("entry-decided", "the entry was decided meanwhile")
    await uow.session.refresh(entry)
    decider = _DECIDERS.get(str(entry.kind))
    if decider is not None:
        await decider(uow, entry, data, actor)
    await uow.record(
        CaseDecided(
            entry_id=entry.id,
            community_id=entry.community_id,
            kind=str(entry.kind),
            item_type=entry.item_type,
            item_id=entry.item_id,
            user_id=entry.user_id,
            actor_id=actor.subject,
            decision=str(data.decision),
            author_reason=data.author_reason,
            decided_at=now,
        ),
        subject=str(entry.community_id),
    )
    return entry


async def decide(
    *, uow: UnitOfWork, entry_id: uuid.UUID, data: DecisionRequest, actor: Principal
) -> QueueEntry:
    """Decide one entry, with a note for moderators and a reason the author sees."""
    entry = await get_entry(uow=uow, entry_id=entry_id, actor=actor)
    await decide_entry(uow, entry, data, actor)
    await uow.commit()
    return entry


async def bulk_decide(
    *, uow: UnitOfWork, community_id: uuid.UUID, data: BulkDecisionRequest, actor: Principal
) -> BulkDecisionResult:
    """One decision for many entries of a community; each stands or fails alone."""
    await require_moderator(uow, community_id, actor, doing="deciding queue entries")
    single = DecisionRequest.model_validate(data.model_dump(exclude={"entry_ids"}))
    decided: list[uuid.UUID] = []
    failed: dict[str, str] = {}
    for entry_id in dict.fromkeys(data.entry_ids):
        entry = await uow.session.get(QueueEntry, entry_id)
        if entry is None or entry.community_id != community_id:
            failed[str(entry_id)] = "not found in this community"
            continue
        try:
            async with uow.session.begin_nested():
                await decide_entry(uow, entry, single, actor)
        except Problem as exc:
            failed[str(entry_id)] = exc.detail or exc.title
            continue
        decided.append(entry_id)
    await uow.commit()
    return BulkDecisionResult(decided=decided, failed=failed)


async def case_section(session: AsyncSession, ref: Any) -> Any:
    """The item's queue entries and their decisions, for a case bundle."""
    rows = (
        await session.exec(
            select(QueueEntry)
            .where(QueueEntry.item_type == ref.item_type, QueueEntry.item_id == ref.item_id)
            .order_by(col(QueueEntry.id))
        )
    ).all()
    return [public(e).model_dump(mode="json") for e in rows]


async def settle_held(
    uow: UnitOfWork,
    *,
    item_type: str,
    item_id: uuid.UUID,
    decision: Decision,
    decided_by: uuid.UUID | None,
    reason: str | None,
) -> bool:
    """Resolve the item's open held entry because content's own review decided it (no event:
    the decision and its event are content's); False if there was none."""
    result = await uow.session.execute(
        update(QueueEntry)
        .where(
            col(QueueEntry.kind) == EntryKind.held,
            col(QueueEntry.item_type) == item_type,
            col(QueueEntry.item_id) == item_id,
            col(QueueEntry.status) == EntryStatus.open,
        )
        .values(
            status=EntryStatus.resolved,
            resolved_at=utcnow(),
            decision=str(decision),
            decided_by=decided_by,
            note="decided in content's review",
            author_reason=reason,
        )
        .execution_options(synchronize_session=False)
    )
    return affected_rows(result) > 0
