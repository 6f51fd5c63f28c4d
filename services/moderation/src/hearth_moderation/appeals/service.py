"""Appeals' use cases: file once per decision, talk, decide (not by who acted), SLA alerts.

The decision is applied in the same transaction: a lifted or reduced sanction through
`sanctions.end_sanction` (members restores what it took), a lifted queue decision by showing
its item again and lifting the sanctions it imposed.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_moderation.appeals.events import AppealDecided, AppealFiled, AppealOverdue
from hearth_moderation.appeals.models import (
    Appeal,
    AppealCreate,
    AppealDecisionRequest,
    AppealMessage,
    AppealMessageCreate,
    AppealMessagePublic,
    AppealOutcome,
    AppealPublic,
    AppealStatus,
    AppealTarget,
)
from hearth_moderation.permissions import is_moderator, require_moderator
from hearth_moderation.queue.models import (
    Decision,
    DecisionRequest,
    EntryKind,
    EntryStatus,
    QueueEntry,
)
from hearth_moderation.queue.service import entry_row, open_entry
from hearth_moderation.reports.service import set_hidden
from hearth_moderation.sanctions.models import Sanction
from hearth_moderation.sanctions.service import IN_FORCE, end_sanction, get_sanction_row
from hearth_moderation.settings import ModerationSettings
from servicekit.db import affected_rows
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.problems import Problem, conflict, forbidden, not_found
from servicekit.runtime import runtime_of, settings_of


async def _file(
    uow: UnitOfWork,
    *,
    community_id: uuid.UUID,
    user_id: uuid.UUID,
    target_type: AppealTarget,
    target_id: uuid.UUID,
    original_actor_id: uuid.UUID | None,
    text: str,
) -> Appeal:
    existing = (
        await uow.session.exec(
            select(Appeal).where(
                col(Appeal.target_type) == target_type, Appeal.target_id == target_id
            )
        )
    ).first()
    if existing is not None:
        raise conflict(
            "already-appealed", "this decision was appealed already", appeal_id=str(existing.id)
        )
    sla = settings_of(runtime_of(uow.session), ModerationSettings).appeal_sla_seconds
    now = utcnow()
    appeal_id = uuid.uuid4()
    entry = await open_entry(
        uow,
        community_id=community_id,
        kind=EntryKind.appeal,
        item_type=str(target_type),
        item_id=target_id,
        user_id=user_id,
        ref_id=appeal_id,
        reasons=["appeal"],
    )
    appeal = Appeal(
        id=appeal_id,
        community_id=community_id,
        user_id=user_id,
        target_type=target_type,
        target_id=target_id,
        original_actor_id=original_actor_id,
        entry_id=entry.id,
        text=text,
        created_at=now,
        due_at=now + timedelta(seconds=sla),
    )
    uow.session.add(appeal)
    try:
        await uow.session.flush()
    except IntegrityError as exc:  # a concurrent appeal of the same decision won
        await uow.session.rollback()
        raise conflict("already-appealed", "this decision was appealed already") from exc
    await uow.record(
        AppealFiled(
            appeal_id=appeal.id,
            community_id=community_id,
            user_id=user_id,
            actor_id=original_actor_id,
            target_type=str(target_type),  # type: ignore[arg-type]
            target_id=target_id,
            due_at=appeal.due_at,
            filed_at=now,
        ),
        subject=str(community_id),
    )
    await uow.commit()
    return appeal


async def _acted_by(uow: UnitOfWork, sanction: Sanction) -> uuid.UUID | None:
    """Who decided a sanction: its moderator, or for a ladder rung the warning's moderator."""
    if sanction.actor_id is not None or sanction.triggered_by is None:
        return sanction.actor_id
    warning = await uow.session.get(Sanction, sanction.triggered_by)
    return warning.actor_id if warning is not None else None


async def appeal_sanction(
    *, uow: UnitOfWork, sanction_id: uuid.UUID, data: AppealCreate, actor: Principal
) -> Appeal:
    """The sanctioned member appeals their sanction (once)."""
    sanction = await get_sanction_row(uow, sanction_id)
    if sanction.user_id != actor.subject:
        raise forbidden("only the member concerned appeals a sanction")
    return await _file(
        uow,
        community_id=sanction.community_id,
        user_id=actor.subject,
        target_type=AppealTarget.sanction,
        target_id=sanction.id,
        original_actor_id=await _acted_by(uow, sanction),
        text=data.text,
    )


async def appeal_decision(
    *, uow: UnitOfWork, entry_id: uuid.UUID, data: AppealCreate, actor: Principal
) -> Appeal:
    """The member concerned appeals a queue decision against them (a rejected or removed item)."""
    entry = await entry_row(uow, entry_id)
    if entry.user_id != actor.subject:
        raise forbidden("only the member concerned appeals a decision")
    if (
        entry.kind == EntryKind.appeal
        or entry.status != EntryStatus.resolved
        or entry.decision != Decision.uphold
    ):
        raise conflict("not-appealable", "only a decision upheld against you can be appealed")
    return await _file(
        uow,
        community_id=entry.community_id,
        user_id=actor.subject,
        target_type=AppealTarget.decision,
        target_id=entry.id,
        original_actor_id=entry.decided_by,
        text=data.text,
    )


async def appeal_row(uow: UnitOfWork, appeal_id: uuid.UUID) -> Appeal:
    """An appeal, or a 404."""
    appeal = await uow.session.get(Appeal, appeal_id)
    if appeal is None:
        raise not_found("appeal", appeal_id)
    return appeal


async def get_appeal(
    *, uow: UnitOfWork, appeal_id: uuid.UUID, actor: Principal
) -> tuple[Appeal, list[AppealMessage]]:
    """An appeal and its dialogue (the appellant, the community's team, staff)."""
    appeal = await appeal_row(uow, appeal_id)
    if appeal.user_id != actor.subject:
        await require_moderator(uow, appeal.community_id, actor, doing="reading appeals")
    messages = (
        await uow.session.exec(
            select(AppealMessage)
            .where(AppealMessage.appeal_id == appeal.id)
            .order_by(col(AppealMessage.id))
        )
    ).all()
    return appeal, list(messages)


async def post_message(
    *, uow: UnitOfWork, appeal_id: uuid.UUID, data: AppealMessageCreate, actor: Principal
) -> AppealMessage:
    """Add to an open appeal's dialogue (the appellant or a moderator)."""
    appeal = await appeal_row(uow, appeal_id)
    moderator = await is_moderator(uow, appeal.community_id, actor)
    if appeal.user_id != actor.subject and not moderator:
        raise forbidden("only the appellant and the community's team take part")
    if appeal.status != AppealStatus.open:
        raise conflict("appeal-decided", "the appeal is decided")
    message = AppealMessage(
        appeal_id=appeal.id,
        author_id=actor.subject,
        from_moderator=appeal.user_id != actor.subject,
        body=data.body,
    )
    uow.session.add(message)
    await uow.commit()
    return message


async def decide_appeal(
    uow: UnitOfWork, appeal: Appeal, data: AppealDecisionRequest, actor: Principal
) -> Appeal:
    """Decide and apply an appeal inside the caller's transaction (not by the one who acted)."""
    await require_moderator(uow, appeal.community_id, actor, doing="deciding appeals")
    if actor.subject in (appeal.original_actor_id, appeal.user_id):
        # Platform staff included: nobody reviews their own decision.
        raise forbidden("a moderator other than the one who acted decides the appeal")
    now = utcnow()
    result = await uow.session.execute(
        update(Appeal)
        .where(col(Appeal.id) == appeal.id, col(Appeal.status) == AppealStatus.open)
        .values(
            status=AppealStatus.decided,
            outcome=data.outcome,
            decision_reason=data.reason,
            decided_by=actor.subject,
            decided_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if affected_rows(result) != 1:
        raise conflict("appeal-decided", "the appeal was decided meanwhile")
    await uow.session.refresh(appeal)
    if data.outcome != AppealOutcome.upheld:
        await _apply(uow, appeal, data, actor)
    await uow.record(
        AppealDecided(
            appeal_id=appeal.id,
            community_id=appeal.community_id,
            user_id=appeal.user_id,
            actor_id=actor.subject,
            target_type=str(appeal.target_type),  # type: ignore[arg-type]
            target_id=appeal.target_id,
            outcome=str(data.outcome),  # type: ignore[arg-type]
            reason=data.reason,
            decided_at=now,
        ),
        subject=str(appeal.community_id),
    )
    return appeal


async def _apply(
    uow: UnitOfWork, appeal: Appeal, data: AppealDecisionRequest, actor: Principal
) -> None:
    outcome = "reduced" if data.outcome == AppealOutcome.reduced else "lifted"
    if appeal.target_type == AppealTarget.sanction:
        sanction = await get_sanction_row(uow, appeal.target_id)
        if sanction.status in IN_FORCE:
            await end_sanction(
                uow,
                sanction,
                actor_id=actor.subject,
                reason=data.reason,
                outcome=outcome,
                points=data.points,
                until=data.muted_until,
                appeal_id=appeal.id,
            )
        return
    entry = await entry_row(uow, appeal.target_id)
    if entry.hidden and entry.item_type in ("post", "comment"):
        await set_hidden(uow, entry, hidden=False, actor_id=actor.subject)
    # The sanctions that decision imposed go with it.
    imposed = (
        await uow.session.exec(
            select(Sanction).where(
                Sanction.evidence_ref == f"moderation:queue:{entry.id}",
                col(Sanction.status).in_(IN_FORCE),
            )
        )
    ).all()
    for sanction in imposed:
        await end_sanction(
            uow,
            sanction,
            actor_id=actor.subject,
            reason=data.reason,
            outcome=outcome,
            points=data.points,
            until=data.muted_until,
            appeal_id=appeal.id,
        )


async def _resolve_entry(uow: UnitOfWork, appeal: Appeal, actor: Principal, reason: str) -> None:
    await uow.session.execute(
        update(QueueEntry)
        .where(col(QueueEntry.id) == appeal.entry_id, col(QueueEntry.status) == EntryStatus.open)
        .values(
            status=EntryStatus.resolved,
            resolved_at=utcnow(),
            decision=str(appeal.outcome),
            decided_by=actor.subject,
            author_reason=reason,
        )
        .execution_options(synchronize_session=False)
    )


async def decide(
    *, uow: UnitOfWork, appeal_id: uuid.UUID, data: AppealDecisionRequest, actor: Principal
) -> Appeal:
    """Decide an appeal: upheld, reduced or lifted, with the reason the appellant is told."""
    appeal = await appeal_row(uow, appeal_id)
    await decide_appeal(uow, appeal, data, actor)
    await _resolve_entry(uow, appeal, actor, data.reason)
    await uow.commit()
    return appeal


async def decide_from_queue(
    uow: UnitOfWork, entry: QueueEntry, data: DecisionRequest, actor: Principal
) -> None:
    """The queue's decider for appeal entries: uphold keeps the decision, dismiss lifts it."""
    if entry.ref_id is None:
        raise Problem(409, "no-appeal", "Conflict", "the entry has no appeal")
    appeal = await appeal_row(uow, entry.ref_id)
    outcome = AppealOutcome.upheld if data.decision == Decision.uphold else AppealOutcome.lifted
    reason = data.author_reason or ("the decision stands" if outcome == "upheld" else "lifted")
    await decide_appeal(uow, appeal, AppealDecisionRequest(outcome=outcome, reason=reason), actor)


async def alert_overdue(uow: UnitOfWork, *, limit: int = 200) -> int:
    """Announce every open appeal past its SLA once (across replicas); how many."""
    now = utcnow()
    due = (
        await uow.session.exec(
            select(Appeal)
            .where(
                col(Appeal.status) == AppealStatus.open,
                col(Appeal.due_at) <= now,
                col(Appeal.overdue_at).is_(None),
            )
            .limit(limit)
        )
    ).all()
    alerted = 0
    for appeal in due:
        result = await uow.session.execute(
            update(Appeal)
            .where(col(Appeal.id) == appeal.id, col(Appeal.overdue_at).is_(None))
            .values(overdue_at=now)
            .execution_options(synchronize_session=False)
        )
        if affected_rows(result) != 1:
            continue
        alerted += 1
        await uow.record(
            AppealOverdue(
                appeal_id=appeal.id,
                community_id=appeal.community_id,
                user_id=appeal.user_id,
                actor_id=appeal.original_actor_id,
                due_at=appeal.due_at,
                alerted_at=now,
            ),
            subject=str(appeal.community_id),
        )
    await uow.commit()
    return alerted


async def case_section(session: AsyncSession, ref: Any) -> Any:
    """Appeals of the item's decisions and sanctions, with their dialogue, for a case bundle."""
    entries = select(QueueEntry.id).where(
        QueueEntry.item_type == ref.item_type, QueueEntry.item_id == ref.item_id
    )
    sanctions = select(Sanction.id).where(
        Sanction.item_type == ref.item_type, Sanction.item_id == ref.item_id
    )
    rows = (
        await session.exec(
            select(Appeal)
            .where(col(Appeal.target_id).in_(entries) | col(Appeal.target_id).in_(sanctions))
            .order_by(col(Appeal.id))
        )
    ).all()
    out = []
    for appeal in rows:
        messages = (
            await session.exec(
                select(AppealMessage)
                .where(AppealMessage.appeal_id == appeal.id)
                .order_by(col(AppealMessage.id))
            )
        ).all()
        doc = AppealPublic.model_validate(appeal, from_attributes=True)
        doc.messages = [
            AppealMessagePublic.model_validate(m, from_attributes=True) for m in messages
        ]
        out.append(doc.model_dump(mode="json"))
    return out
