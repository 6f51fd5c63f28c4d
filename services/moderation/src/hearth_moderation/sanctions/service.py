"""The sanction ladder's use cases: impose, escalate, lift, expire (keyword-only functions).

`apply_sanction` and `end_sanction` never commit: routes, queue decisions, appeals and the
expiry pass call them inside their own transaction, with the events in the same outbox.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_moderation.permissions import MODERATORS, membership_of, require_moderator
from hearth_moderation.sanctions.events import SanctionAppliedV2, SanctionExpired, SanctionLifted
from hearth_moderation.sanctions.models import (
    LEVEL_ORDER,
    Ladder,
    LadderUpdate,
    Sanction,
    SanctionCreate,
    SanctionLevel,
    SanctionPublic,
    SanctionStatus,
    Standing,
)
from servicekit.db import affected_rows
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.pagination import PageParams, after_id
from servicekit.problems import Problem, conflict, forbidden, not_found

IN_FORCE = (SanctionStatus.active, SanctionStatus.reduced)
QUOTE_MAX = 300


def appeal_path(sanction_id: uuid.UUID) -> str:
    """Where the member appeals a sanction (through the gateway)."""
    return f"/api/moderation/sanctions/{sanction_id}/appeals"


async def ladder_of(uow: UnitOfWork, community_id: uuid.UUID) -> Ladder:
    """The community's ladder, or the defaults (not stored) when it has not set one."""
    return await uow.session.get(Ladder, community_id) or Ladder(community_id=community_id)


async def get_ladder(*, uow: UnitOfWork, community_id: uuid.UUID, actor: Principal) -> Ladder:
    """The community's ladder (its team and platform staff)."""
    await require_moderator(uow, community_id, actor, doing="reading the sanction ladder")
    return await ladder_of(uow, community_id)


async def update_ladder(
    *, uow: UnitOfWork, community_id: uuid.UUID, data: LadderUpdate, actor: Principal
) -> Ladder:
    """Change the community's ladder; the rungs must climb (mute < removal < ban)."""
    await require_moderator(uow, community_id, actor, doing="changing the sanction ladder")
    ladder = await ladder_of(uow, community_id)
    for name, value in data.model_dump(exclude_unset=True).items():
        if value is not None:
            setattr(
                ladder,
                name,
                {str(k): str(v) for k, v in value.items()} if name == "severities" else value,
            )
    if not ladder.mute_at < ladder.removal_at < ladder.ban_at:
        raise Problem(
            422, "ladder-order", "Unprocessable", "mute_at < removal_at < ban_at must hold"
        )
    ladder.updated_at = utcnow()
    ladder.updated_by = actor.subject
    uow.session.add(ladder)
    await uow.commit()
    return ladder


async def active_points(
    uow: UnitOfWork, community_id: uuid.UUID, user_id: uuid.UUID, *, now: datetime | None = None
) -> int:
    """The member's warning points that still count."""
    stmt = select(func.coalesce(func.sum(Sanction.points), 0)).where(
        Sanction.community_id == community_id,
        Sanction.user_id == user_id,
        col(Sanction.level) == SanctionLevel.warning,
        col(Sanction.status).in_(IN_FORCE),
        col(Sanction.ends_at) > (now or utcnow()),
    )
    return int((await uow.session.exec(stmt)).one())


def _notice(sanction: Sanction, community_active: int, ladder: Ladder) -> str:
    """What the member is told: what, why (the item quoted), until when, how to appeal."""
    what = {
        SanctionLevel.warning: (
            f"You received a warning ({sanction.points} point(s); {community_active} active, "
            f"{ladder.mute_at} mute you)."
        ),
        SanctionLevel.mute: "You are muted: you cannot post or comment.",
        SanctionLevel.removal: "You were removed from the community.",
        SanctionLevel.ban: "You were banned from the community and cannot rejoin.",
    }[sanction.level]
    parts = [what, f"Why: {sanction.reason}."]
    if sanction.quote:
        quoted = (
            sanction.quote if len(sanction.quote) <= QUOTE_MAX else sanction.quote[:QUOTE_MAX] + "…"
        )
        parts.append(f'About your {sanction.item_type or "item"}: "{quoted}".')
    if sanction.ends_at is not None:
        kind = "The points count" if sanction.level == SanctionLevel.warning else "It lasts"
        parts.append(f"{kind} until {sanction.ends_at:%Y-%m-%d %H:%M} UTC.")
    else:
        parts.append("It lasts until lifted.")
    parts.append(f"You may appeal once: POST {appeal_path(sanction.id)}.")
    return " ".join(parts)


async def apply_sanction(
    uow: UnitOfWork,
    *,
    community_id: uuid.UUID,
    user_id: uuid.UUID,
    level: SanctionLevel,
    reason: str,
    actor_id: uuid.UUID | None,
    cause: str = "manual",
    points: int | None = None,
    duration_seconds: int | None = None,
    severity: str | None = None,
    item_type: str | None = None,
    item_id: uuid.UUID | None = None,
    quote: str | None = None,
    evidence_ref: str | None = None,
) -> list[Sanction]:
    """Apply a sanction and whatever rung its points reach; the sanctions made, first first."""
    ladder = await ladder_of(uow, community_id)
    if severity is not None:
        floor = SanctionLevel(ladder.severities.get(severity, SanctionLevel.warning))
        if LEVEL_ORDER[floor] > LEVEL_ORDER[level]:
            level, cause = floor, "severity"
    now = utcnow()
    sanction = Sanction(
        community_id=community_id,
        user_id=user_id,
        level=level,
        reason=reason,
        severity=severity,
        cause=cause,
        actor_id=actor_id,
        item_type=item_type,
        item_id=item_id,
        quote=quote,
        starts_at=now,
    )
    sanction.evidence_ref = evidence_ref or f"moderation:sanction:{sanction.id}"
    if level == SanctionLevel.warning:
        sanction.points = points or ladder.warning_points
        sanction.ends_at = now + timedelta(seconds=ladder.points_ttl_seconds)
    elif level == SanctionLevel.mute:
        sanction.ends_at = now + timedelta(seconds=duration_seconds or ladder.mute_seconds)
    uow.session.add(sanction)
    await uow.session.flush()
    total = await active_points(uow, community_id, user_id, now=now)
    await _announce(uow, sanction, total, ladder)
    made = [sanction]
    if level == SanctionLevel.warning:
        before = total - sanction.points
        for threshold, rung in (
            (ladder.ban_at, SanctionLevel.ban),
            (ladder.removal_at, SanctionLevel.removal),
            (ladder.mute_at, SanctionLevel.mute),
        ):
            if before < threshold <= total:
                made.append(await _escalate(uow, sanction, rung, total, ladder, now))
                break
    return made


async def _escalate(
    uow: UnitOfWork,
    warning: Sanction,
    level: SanctionLevel,
    total: int,
    ladder: Ladder,
    now: datetime,
) -> Sanction:
    rung = Sanction(
        community_id=warning.community_id,
        user_id=warning.user_id,
        level=level,
        reason=f"{total} active warning points reached the {level} rung (last: {warning.reason})",
        cause="ladder",
        actor_id=None,
        triggered_by=warning.id,
        item_type=warning.item_type,
        item_id=warning.item_id,
        quote=warning.quote,
        evidence_ref=warning.evidence_ref,
        starts_at=now,
        ends_at=now + timedelta(seconds=ladder.mute_seconds)
        if level == SanctionLevel.mute
        else None,
        details={"active_points": total},
    )
    uow.session.add(rung)
    await uow.session.flush()
    await _announce(uow, rung, total, ladder)
    return rung


async def _announce(uow: UnitOfWork, sanction: Sanction, total: int, ladder: Ladder) -> None:
    await uow.record(
        SanctionAppliedV2(
            sanction_id=sanction.id,
            community_id=sanction.community_id,
            user_id=sanction.user_id,
            actor_id=sanction.actor_id,
            level=str(sanction.level),
            cause=sanction.cause,
            points=sanction.points,
            active_points=total,
            reason=sanction.reason,
            severity=sanction.severity,
            evidence_ref=sanction.evidence_ref,
            item_type=sanction.item_type,
            item_id=sanction.item_id,
            quote=sanction.quote,
            muted_until=sanction.ends_at if sanction.level == SanctionLevel.mute else None,
            expires_at=sanction.ends_at,
            appeal_path=appeal_path(sanction.id),
            notice=_notice(sanction, total, ladder),
            applied_at=sanction.starts_at,
        ),
        subject=str(sanction.community_id),
    )


async def impose(
    *, uow: UnitOfWork, community_id: uuid.UUID, data: SanctionCreate, actor: Principal
) -> list[Sanction]:
    """A moderator's sanction with a reason (and the rungs it reaches); staff and the team."""
    await require_moderator(uow, community_id, actor, doing="sanctioning a member")
    if data.user_id == actor.subject:
        raise forbidden("you cannot sanction yourself")
    target = await membership_of(uow, community_id, data.user_id)
    if not actor.is_staff and target is not None and target.role in MODERATORS:
        raise forbidden("only platform staff sanction the community's team")
    made = await apply_sanction(
        uow,
        community_id=community_id,
        user_id=data.user_id,
        level=data.level,
        reason=data.reason,
        actor_id=actor.subject,
        points=data.points,
        duration_seconds=data.duration_seconds,
        severity=data.severity,
        item_type=data.item_type,
        item_id=data.item_id,
        quote=data.quote,
    )
    await uow.commit()
    return made


async def end_sanction(
    uow: UnitOfWork,
    sanction: Sanction,
    *,
    actor_id: uuid.UUID | None,
    reason: str,
    outcome: str = "lifted",
    points: int | None = None,
    until: datetime | None = None,
    appeal_id: uuid.UUID | None = None,
) -> Sanction:
    """Lift (or reduce: fewer points, an earlier end) a sanction in force and announce it."""
    if sanction.status not in IN_FORCE:
        raise conflict("sanction-not-in-force", f"the sanction is {sanction.status}")
    now = utcnow()
    removed = 0
    if outcome == "reduced":
        if sanction.level == SanctionLevel.warning:
            new_points = max(
                0, min(points if points is not None else sanction.points - 1, sanction.points)
            )
            removed = sanction.points - new_points
            sanction.points = new_points
        elif sanction.level == SanctionLevel.mute:
            sanction.ends_at = max(now, min(until or now, sanction.ends_at or now))
        else:
            outcome = "lifted"  # a removal or ban is not partly undone: reduced means reinstated
    if outcome == "lifted":
        removed = sanction.points if sanction.level == SanctionLevel.warning else 0
    status = SanctionStatus.lifted if outcome == "lifted" else SanctionStatus.reduced
    # Conditional, so two moderators (or an appeal and the expiry pass) cannot both end it.
    result = await uow.session.execute(
        update(Sanction)
        .where(col(Sanction.id) == sanction.id, col(Sanction.status).in_(IN_FORCE))
        .values(
            status=status,
            points=sanction.points,
            ends_at=sanction.ends_at,
            ended_at=now if status == SanctionStatus.lifted else None,
            ended_by=actor_id,
            end_reason=reason,
        )
        .execution_options(synchronize_session=False)
    )
    if affected_rows(result) != 1:
        raise conflict("sanction-not-in-force", "the sanction ended meanwhile")
    await uow.session.refresh(sanction)
    await uow.record(
        SanctionLifted(
            sanction_id=sanction.id,
            community_id=sanction.community_id,
            user_id=sanction.user_id,
            actor_id=actor_id,
            level=str(sanction.level),
            outcome="lifted" if status == SanctionStatus.lifted else "reduced",
            reason=reason,
            points_removed=removed,
            muted_until=(
                sanction.ends_at
                if sanction.level == SanctionLevel.mute and status == SanctionStatus.reduced
                else None
            ),
            appeal_id=appeal_id,
            lifted_at=now,
        ),
        subject=str(sanction.community_id),
    )
    return sanction


async def lift(
    *, uow: UnitOfWork, sanction_id: uuid.UUID, reason: str, actor: Principal
) -> Sanction:
    """A moderator other than the one who imposed it lifts a sanction (appeals go elsewhere)."""
    sanction = await get_sanction_row(uow, sanction_id)
    await require_moderator(uow, sanction.community_id, actor, doing="lifting a sanction")
    await end_sanction(uow, sanction, actor_id=actor.subject, reason=reason)
    await uow.commit()
    return sanction


async def get_sanction_row(uow: UnitOfWork, sanction_id: uuid.UUID) -> Sanction:
    """A sanction, or a 404."""
    sanction = await uow.session.get(Sanction, sanction_id)
    if sanction is None:
        raise not_found("sanction", sanction_id)
    return sanction


async def get_sanction(*, uow: UnitOfWork, sanction_id: uuid.UUID, actor: Principal) -> Sanction:
    """One sanction: the member concerned, the community's team, platform staff."""
    sanction = await get_sanction_row(uow, sanction_id)
    if sanction.user_id != actor.subject:
        await require_moderator(uow, sanction.community_id, actor, doing="reading sanctions")
    return sanction


async def list_sanctions(
    *,
    uow: UnitOfWork,
    community_id: uuid.UUID,
    user_id: uuid.UUID | None,
    status: SanctionStatus | None,
    page: PageParams,
    actor: Principal,
) -> list[Sanction]:
    """A community's sanctions, newest first (limit+1 rows); a member sees only their own."""
    if user_id != actor.subject:
        await require_moderator(uow, community_id, actor, doing="reading sanctions")
    stmt = (
        select(Sanction)
        .where(Sanction.community_id == community_id)
        .order_by(col(Sanction.id).desc())
        .limit(page.limit + 1)
    )
    if user_id is not None:
        stmt = stmt.where(Sanction.user_id == user_id)
    if status is not None:
        stmt = stmt.where(col(Sanction.status) == status)
    if page.after:
        stmt = stmt.where(col(Sanction.id) < after_id(page))
    return list((await uow.session.exec(stmt)).all())


async def standing(
    *, uow: UnitOfWork, community_id: uuid.UUID, user_id: uuid.UUID, actor: Principal
) -> Standing:
    """A member's active points and sanctions in force (themselves, the team, staff)."""
    if user_id != actor.subject:
        await require_moderator(uow, community_id, actor, doing="reading a member's standing")
    now = utcnow()
    rows = (
        await uow.session.exec(
            select(Sanction)
            .where(
                Sanction.community_id == community_id,
                Sanction.user_id == user_id,
                col(Sanction.status).in_(IN_FORCE),
            )
            .order_by(col(Sanction.id).desc())
        )
    ).all()
    in_force = [s for s in rows if s.ends_at is None or _aware(s.ends_at) > now]
    mutes = [_aware(s.ends_at) for s in in_force if s.level == SanctionLevel.mute and s.ends_at]
    return Standing(
        community_id=community_id,
        user_id=user_id,
        active_points=await active_points(uow, community_id, user_id, now=now),
        muted_until=max(mutes) if mutes else None,
        sanctions=[SanctionPublic.model_validate(s, from_attributes=True) for s in in_force],
    )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


async def expire_due(uow: UnitOfWork, *, limit: int = 200) -> int:
    """End the sanctions whose time has come, each announced exactly once; how many ended.

    Several replicas may run this at once: the conditional UPDATE lets one of them end each
    sanction (PostgreSQL re-checks the row after the other's commit), and only that one
    records the event, in the same transaction.
    """
    now = utcnow()
    due = (
        await uow.session.exec(
            select(Sanction)
            .where(col(Sanction.status).in_(IN_FORCE), col(Sanction.ends_at) <= now)
            .order_by(col(Sanction.ends_at))
            .limit(limit)
        )
    ).all()
    ended = 0
    for sanction in due:
        result = await uow.session.execute(
            update(Sanction)
            .where(col(Sanction.id) == sanction.id, col(Sanction.status).in_(IN_FORCE))
            .values(status=SanctionStatus.expired, ended_at=now)
            .execution_options(synchronize_session=False)
        )
        if affected_rows(result) != 1:
            continue  # another replica ended it first
        ended += 1
        await uow.record(
            SanctionExpired(
                sanction_id=sanction.id,
                community_id=sanction.community_id,
                user_id=sanction.user_id,
                level=str(sanction.level),
                points=sanction.points,
                expired_at=now,
            ),
            subject=str(sanction.community_id),
        )
    await uow.commit()
    return ended


async def case_section(session: AsyncSession, ref: Any) -> Any:
    """The sanctions imposed for the item, for a case bundle."""
    rows = (
        await session.exec(
            select(Sanction)
            .where(Sanction.item_type == ref.item_type, Sanction.item_id == ref.item_id)
            .order_by(col(Sanction.id))
        )
    ).all()
    return [
        SanctionPublic.model_validate(s, from_attributes=True).model_dump(mode="json") for s in rows
    ]
