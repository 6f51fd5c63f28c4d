"""Reports' use cases: file (weighted, hiding at the threshold), resolve, policy.

A reporter's weight follows Discourse's `user_flag_score` idea: their share of past reports
upheld, smoothed so a newcomer starts at 1.0, plus a bonus for their tier, between a floor and
a cap. An item's score is the sum of its open reports' weights.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_moderation.items.service import item_of
from hearth_moderation.permissions import membership_of, require_member, require_moderator
from hearth_moderation.queue.models import Decision, DecisionRequest, EntryKind, QueueEntry
from hearth_moderation.queue.service import open_entry
from hearth_moderation.reports.events import ItemHidden, ItemRestored, ReportFiled, ReportResolved
from hearth_moderation.reports.models import (
    Report,
    ReportCreate,
    ReportPolicy,
    ReportPolicyUpdate,
    ReportPublic,
    ReportReason,
    ReportStatus,
    ReportTarget,
)
from hearth_moderation.sanctions.models import SanctionLevel
from hearth_moderation.sanctions.service import apply_sanction
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.pagination import PageParams, after_id
from servicekit.problems import Problem, conflict, forbidden, not_found

HIDEABLE = (ReportTarget.post, ReportTarget.comment)


async def policy_of(uow: UnitOfWork, community_id: uuid.UUID) -> ReportPolicy:
    """The community's report policy, or the defaults (not stored)."""
    return await uow.session.get(ReportPolicy, community_id) or ReportPolicy(
        community_id=community_id
    )


async def get_policy(*, uow: UnitOfWork, community_id: uuid.UUID, actor: Principal) -> ReportPolicy:
    """The community's report policy (its team and staff)."""
    await require_moderator(uow, community_id, actor, doing="reading the report policy")
    return await policy_of(uow, community_id)


async def update_policy(
    *, uow: UnitOfWork, community_id: uuid.UUID, data: ReportPolicyUpdate, actor: Principal
) -> ReportPolicy:
    """Change the hide threshold or the reporter weights."""
    await require_moderator(uow, community_id, actor, doing="changing the report policy")
    policy = await policy_of(uow, community_id)
    for name, value in data.model_dump(exclude_unset=True).items():
        if value is not None:
            setattr(policy, name, value)
    if policy.weight_floor > policy.weight_cap:
        raise Problem(
            422, "weight-bounds", "Unprocessable", "weight_floor must not exceed weight_cap"
        )
    policy.updated_at = utcnow()
    policy.updated_by = actor.subject
    uow.session.add(policy)
    await uow.commit()
    return policy


async def reporter_weight(
    uow: UnitOfWork, *, reporter_id: uuid.UUID, tier: str | None, policy: ReportPolicy
) -> tuple[float, dict[str, Any]]:
    """The reporter's weight and its make-up (track record across communities, tier)."""
    rows = (
        await uow.session.exec(
            select(col(Report.status), func.count())
            .where(
                Report.reporter_id == reporter_id,
                col(Report.status).in_((ReportStatus.upheld, ReportStatus.rejected)),
            )
            .group_by(col(Report.status))
        )
    ).all()
    counts = {str(status): int(n) for status, n in rows}
    upheld, rejected = counts.get("upheld", 0), counts.get("rejected", 0)
    accuracy = (upheld + 1) / (upheld + rejected + 2)  # Laplace: a newcomer counts 0.5
    bonus = float(policy.tier_bonus.get(tier or "", 0.0))
    raw = 2 * accuracy + bonus
    weight = round(min(policy.weight_cap, max(policy.weight_floor, raw)), 3)
    return weight, {
        "upheld": upheld,
        "rejected": rejected,
        "accuracy": round(accuracy, 3),
        "tier": tier,
        "tier_bonus": bonus,
        "raw": round(raw, 3),
        "floor": policy.weight_floor,
        "cap": policy.weight_cap,
        "weight": weight,
    }


async def file_report(
    *, uow: UnitOfWork, community_id: uuid.UUID, data: ReportCreate, actor: Principal
) -> Report:
    """A member reports a post, comment or member of their community."""
    me = await require_member(uow, community_id, actor)
    if data.reason == ReportReason.other and not (data.text or "").strip():
        raise Problem(422, "report-text", "Unprocessable", "a report for `other` needs a text")
    if data.item_type == ReportTarget.member:
        target = await membership_of(uow, community_id, data.item_id)
        if target is None:
            raise not_found("member", data.item_id)
        author: uuid.UUID | None = data.item_id
    else:
        item = await item_of(uow.session, item_type=str(data.item_type), item_id=data.item_id)
        if item is None or item.community_id != community_id:
            raise not_found(str(data.item_type), data.item_id)
        author = item.author_id
    if author == actor.subject:
        raise forbidden("you cannot report yourself")
    existing = (
        await uow.session.exec(
            select(Report).where(
                col(Report.item_type) == data.item_type,
                Report.item_id == data.item_id,
                Report.reporter_id == actor.subject,
            )
        )
    ).first()
    if existing is not None:
        raise conflict("already-reported", "you reported this already", report_id=str(existing.id))
    policy = await policy_of(uow, community_id)
    weight, detail = await reporter_weight(
        uow, reporter_id=actor.subject, tier=me.tier, policy=policy
    )
    entry = await open_entry(
        uow,
        community_id=community_id,
        kind=EntryKind.report,
        item_type=str(data.item_type),
        item_id=data.item_id,
        user_id=author,
        reasons=[str(data.reason)],
    )
    report = Report(
        community_id=community_id,
        item_type=data.item_type,
        item_id=data.item_id,
        item_author_id=author,
        reporter_id=actor.subject,
        reason=data.reason,
        text=data.text,
        weight=weight,
        weight_detail=detail,
        entry_id=entry.id,
    )
    try:
        async with uow.session.begin_nested():
            uow.session.add(report)
            await uow.session.flush()
    except IntegrityError as exc:  # the same reporter's concurrent report of the same item
        raise conflict("already-reported", "you reported this already") from exc
    # One report at a time per entry (row lock on PostgreSQL): the score and the hide decision
    # are computed from the rows, never lost between two concurrent reports.
    entry = (
        await uow.session.exec(
            select(QueueEntry)
            .where(QueueEntry.id == entry.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).one()
    opened = (
        await uow.session.exec(
            select(Report)
            .where(Report.entry_id == entry.id, col(Report.status) == ReportStatus.open)
            .order_by(col(Report.id))
        )
    ).all()
    entry.score = round(sum(r.weight for r in opened), 3)
    entry.details = {
        **entry.details,
        "threshold": policy.hide_threshold,
        "score": [
            {
                "report_id": str(r.id),
                "reporter_id": str(r.reporter_id),
                "reason": str(r.reason),
                "text": r.text,
                **r.weight_detail,
            }
            for r in opened
        ],
    }
    now = utcnow()
    if data.item_type in HIDEABLE and not entry.hidden and entry.score >= policy.hide_threshold:
        entry.hidden = True
        await uow.record(
            ItemHidden(
                entry_id=entry.id,
                community_id=community_id,
                item_type=str(data.item_type),  # type: ignore[arg-type]
                item_id=data.item_id,
                user_id=author,
                cause="reports",
                score=entry.score,
                threshold=policy.hide_threshold,
                reasons=entry.reasons,
                hidden_at=now,
            ),
            subject=str(community_id),
        )
    uow.session.add(entry)
    await uow.record(
        ReportFiled(
            report_id=report.id,
            entry_id=entry.id,
            community_id=community_id,
            item_type=str(data.item_type),
            item_id=data.item_id,
            user_id=author,
            reporter_id=actor.subject,
            reason=str(data.reason),
            weight=weight,
            score=entry.score,
            filed_at=report.created_at,
        ),
        subject=str(community_id),
    )
    await uow.commit()
    return report


async def decide_reports(
    uow: UnitOfWork, entry: QueueEntry, data: DecisionRequest, actor: Principal
) -> None:
    """The queue's decider for report entries: reports upheld or rejected, item hidden/shown."""
    upheld = data.decision == Decision.uphold
    outcome = ReportStatus.upheld if upheld else ReportStatus.rejected
    now = utcnow()
    reports = (
        await uow.session.exec(
            select(Report).where(
                Report.entry_id == entry.id, col(Report.status) == ReportStatus.open
            )
        )
    ).all()
    await uow.session.execute(
        update(Report)
        .where(col(Report.entry_id) == entry.id, col(Report.status) == ReportStatus.open)
        .values(status=outcome, resolved_at=now, resolved_by=actor.subject)
        .execution_options(synchronize_session=False)
    )
    for report in reports:
        await uow.record(
            ReportResolved(
                report_id=report.id,
                entry_id=entry.id,
                community_id=entry.community_id,
                item_type=entry.item_type,
                item_id=entry.item_id,
                user_id=entry.user_id,
                reporter_id=report.reporter_id,
                actor_id=actor.subject,
                outcome="upheld" if upheld else "rejected",
                resolved_at=now,
            ),
            subject=str(entry.community_id),
        )
    hideable = entry.item_type in (ReportTarget.post, ReportTarget.comment)
    if hideable and upheld and not entry.hidden:
        await set_hidden(uow, entry, hidden=True, actor_id=actor.subject)
    elif hideable and not upheld and entry.hidden:
        await set_hidden(uow, entry, hidden=False, actor_id=actor.subject)
    if upheld and data.sanction is not None and entry.user_id is not None:
        item = None
        if hideable:
            item = await item_of(uow.session, item_type=entry.item_type, item_id=entry.item_id)
        await apply_sanction(
            uow,
            community_id=entry.community_id,
            user_id=entry.user_id,
            level=SanctionLevel(data.sanction),
            reason=data.author_reason or ", ".join(entry.reasons) or "reported",
            actor_id=actor.subject,
            severity=str(data.severity) if data.severity else None,
            item_type=entry.item_type,
            item_id=entry.item_id,
            quote=(item.text or item.title) if item is not None else None,
            evidence_ref=f"moderation:queue:{entry.id}",
        )


async def set_hidden(
    uow: UnitOfWork, entry: QueueEntry, *, hidden: bool, actor_id: uuid.UUID | None
) -> None:
    """Hide or show the entry's item and announce it (caller commits)."""
    entry.hidden = hidden
    uow.session.add(entry)
    now = utcnow()
    item_type: Any = entry.item_type
    if hidden:
        await uow.record(
            ItemHidden(
                entry_id=entry.id,
                community_id=entry.community_id,
                item_type=item_type,
                item_id=entry.item_id,
                user_id=entry.user_id,
                actor_id=actor_id,
                cause="decision",
                score=entry.score,
                threshold=float(entry.details.get("threshold", 0.0)),
                reasons=entry.reasons,
                hidden_at=now,
            ),
            subject=str(entry.community_id),
        )
    else:
        await uow.record(
            ItemRestored(
                entry_id=entry.id,
                community_id=entry.community_id,
                item_type=item_type,
                item_id=entry.item_id,
                user_id=entry.user_id,
                actor_id=actor_id,
                restored_at=now,
            ),
            subject=str(entry.community_id),
        )


async def list_my_reports(*, uow: UnitOfWork, actor: Principal, page: PageParams) -> list[Report]:
    """The caller's own reports, newest first (limit+1 rows), with their outcome."""
    stmt = (
        select(Report)
        .where(Report.reporter_id == actor.subject)
        .order_by(col(Report.id).desc())
        .limit(page.limit + 1)
    )
    if page.after:
        stmt = stmt.where(col(Report.id) < after_id(page))
    return list((await uow.session.exec(stmt)).all())


async def case_section(session: AsyncSession, ref: Any) -> Any:
    """The item's reports, for a case bundle (evidence.register_section)."""
    rows = (
        await session.exec(
            select(Report)
            .where(col(Report.item_type) == ref.item_type, Report.item_id == ref.item_id)
            .order_by(col(Report.id))
        )
    ).all()
    return [
        ReportPublic.model_validate(r, from_attributes=True).model_dump(mode="json") for r in rows
    ]
