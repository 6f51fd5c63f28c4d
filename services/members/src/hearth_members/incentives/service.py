"""Incentive use cases: the ledger, balances, leaderboards, badges and perks.

Functions named `apply_*` / `award_*` write without committing (consumer handlers and other
use cases compose them); the route-facing ones commit their unit of work.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import Table, func, update
from sqlmodel import col, select

from hearth_members.communities.models import Community
from hearth_members.incentives.access import (
    require_manager,
    require_member,
    require_reader,
    require_self_or_manager,
)
from hearth_members.incentives.events import BadgeGranted, BadgeRevoked, PerkRedeemed, PointsAwarded
from hearth_members.incentives.models import (
    DEFAULT_POINT_RULES,
    ActivityCount,
    Badge,
    BadgeAward,
    BadgeAwardPublic,
    BadgeCreate,
    BadgeGrantCreate,
    BadgeKind,
    BadgeRevokeRequest,
    EntryKind,
    IncentiveSettings,
    IncentiveSettingsUpdate,
    Leaderboard,
    LeaderboardRow,
    MemberIncentives,
    Perk,
    PerkCreate,
    PerkRedemption,
    PerkUpdate,
    PointAdjustmentCreate,
    PointBalance,
    PointEntry,
    PointRule,
    PointRulesPublic,
    PointRulesUpdate,
)
from hearth_members.tiers import service as tiers
from servicekit.db import affected_rows, upsert_insert
from servicekit.deps import UnitOfWork
from servicekit.events import CE_TYPE_PREFIX
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.pagination import PageParams, after_id
from servicekit.problems import Problem, conflict, not_found

# Core tables of the models, for the dialect-specific upserts.
BALANCES: Table = PointBalance.__table__  # type: ignore[attr-defined]
LEDGER: Table = PointEntry.__table__  # type: ignore[attr-defined]
COUNTS: Table = ActivityCount.__table__  # type: ignore[attr-defined]
WINDOWS: dict[str, timedelta | None] = {
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "all": None,
}


def source_of(ce_type: str) -> str:
    """`hearth.content.post.published.v1` → `content.post.published` (rules outlive versions)."""
    return ce_type.removeprefix(CE_TYPE_PREFIX).rsplit(".", 1)[0]


# --- rules and settings -------------------------------------------------------------------


async def effective_rules(uow: UnitOfWork, community_id: uuid.UUID) -> PointRulesPublic:
    """Defaults merged with the community's overrides."""
    stmt = select(PointRule).where(PointRule.community_id == community_id)
    overrides = {r.source: r.points for r in (await uow.session.exec(stmt)).all()}
    return PointRulesPublic(
        community_id=community_id,
        rules={**DEFAULT_POINT_RULES, **overrides},
        overridden=sorted(overrides),
    )


async def get_rules(
    *, uow: UnitOfWork, community_id: uuid.UUID, actor: Principal
) -> PointRulesPublic:
    """The effective point rules (any member may read how points are earned)."""
    await require_reader(uow, community_id, actor)
    return await effective_rules(uow, community_id)


async def set_rules(
    *, uow: UnitOfWork, community_id: uuid.UUID, data: PointRulesUpdate, actor: Principal
) -> PointRulesPublic:
    """Set overrides for the given sources (managers); a value equal to the default clears it."""
    await require_manager(uow, community_id, actor)
    for source, points in data.rules.items():
        stmt = select(PointRule).where(
            PointRule.community_id == community_id, PointRule.source == source
        )
        rule = (await uow.session.exec(stmt)).first()
        if points == DEFAULT_POINT_RULES[source]:
            if rule is not None:
                await uow.session.delete(rule)
            continue
        if rule is None:
            rule = PointRule(community_id=community_id, source=source, points=points)
        rule.points, rule.updated_by, rule.updated_at = points, actor.subject, utcnow()
        uow.session.add(rule)
    await uow.session.flush()
    result = await effective_rules(uow, community_id)
    await uow.commit()
    return result


async def settings_of(uow: UnitOfWork, community_id: uuid.UUID) -> IncentiveSettings:
    """The community's incentive settings (defaults when never set)."""
    found = await uow.session.get(IncentiveSettings, community_id)
    return found or IncentiveSettings(community_id=community_id)


async def get_settings(
    *, uow: UnitOfWork, community_id: uuid.UUID, actor: Principal
) -> IncentiveSettings:
    """A community's incentive settings (members may read them)."""
    await require_reader(uow, community_id, actor)
    return await settings_of(uow, community_id)


async def set_settings(
    *, uow: UnitOfWork, community_id: uuid.UUID, data: IncentiveSettingsUpdate, actor: Principal
) -> IncentiveSettings:
    """Switch leaderboards and per-person rankings on or off (managers)."""
    await require_manager(uow, community_id, actor)
    found = await uow.session.get(IncentiveSettings, community_id, with_for_update=True)
    found = found or IncentiveSettings(community_id=community_id)
    found.leaderboards_enabled = data.leaderboards_enabled
    found.updated_by, found.updated_at = actor.subject, utcnow()
    uow.session.add(found)
    await uow.commit()
    return found


# --- the ledger -----------------------------------------------------------------------------


async def _ensure_balance(uow: UnitOfWork, community_id: uuid.UUID, user_id: uuid.UUID) -> None:
    stmt = upsert_insert(uow.session, BALANCES).values(
        community_id=community_id, user_id=user_id, balance=0, earned=0, updated_at=utcnow()
    )
    await uow.session.execute(stmt.on_conflict_do_nothing())


async def _apply(
    uow: UnitOfWork, community_id: uuid.UUID, user_id: uuid.UUID, delta: int
) -> tuple[int, int]:
    """Add delta to the balance, clamped at zero; returns (applied, new balance)."""
    await _ensure_balance(uow, community_id, user_id)
    # Row lock on PostgreSQL (SQLite serializes writers with BEGIN IMMEDIATE), so a deduction
    # and a concurrent redemption cannot both read the same balance.
    stmt = (
        select(PointBalance)
        .where(PointBalance.community_id == community_id, PointBalance.user_id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    row = (await uow.session.exec(stmt)).one()
    applied = max(delta, -row.balance)
    row.balance += applied
    row.earned += applied
    row.updated_at = utcnow()
    uow.session.add(row)
    await uow.session.flush()
    return applied, row.balance


async def _record_awarded(uow: UnitOfWork, entry: PointEntry, balance: int) -> None:
    await uow.record(
        PointsAwarded(
            entry_id=entry.id,
            community_id=entry.community_id,
            user_id=entry.user_id,
            kind=entry.kind,
            points=entry.points,
            balance=balance,
            reason=entry.reason,
            source_event_id=entry.source_event_id,
            source_event_type=entry.source_event_type,
            awarded_at=entry.created_at,
        ),
        subject=str(entry.community_id),
    )


async def award_for_event(
    *,
    uow: UnitOfWork,
    community_id: uuid.UUID,
    user_id: uuid.UUID,
    event_id: uuid.UUID,
    event_type: str,
    reason: str,
) -> PointEntry | None:
    """Apply the community's rule for a source event, once per event (no commit)."""
    if await uow.session.get(Community, community_id) is None:
        return None  # not a community members knows: nothing to credit (and no retry storm)
    source = source_of(event_type)
    points = (await effective_rules(uow, community_id)).rules.get(source, 0)
    entry: PointEntry | None = None
    if points != 0:
        entry = PointEntry(
            community_id=community_id,
            user_id=user_id,
            kind=EntryKind.award,
            points=points,
            reason=reason,
            source_event_id=event_id,
            source_event_type=event_type,
        )
        inserted = await uow.session.execute(
            upsert_insert(uow.session, LEDGER)
            .values(**entry.model_dump())
            .on_conflict_do_nothing(index_elements=["community_id", "user_id", "source_event_id"])
        )
        if affected_rows(inserted) == 0:
            return None  # this source event was already counted: one ledger entry per event
        applied, balance = await _apply(uow, community_id, user_id, points)
        if applied != points:
            await uow.session.execute(
                update(PointEntry).where(col(PointEntry.id) == entry.id).values(points=applied)
            )
            entry.points = applied
        await _record_awarded(uow, entry, balance)
    count = await _count(uow, community_id, user_id, source)
    await _automatic_badges(uow, community_id, user_id, source, count)
    await tiers.recompute(uow=uow, community_id=community_id, user_id=user_id)
    return entry


async def _count(uow: UnitOfWork, community_id: uuid.UUID, user_id: uuid.UUID, source: str) -> int:
    stmt = upsert_insert(uow.session, COUNTS).values(
        community_id=community_id, user_id=user_id, source=source, count=1
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["community_id", "user_id", "source"],
        set_={"count": COUNTS.c["count"] + 1},
    )
    await uow.session.execute(stmt)
    found = await uow.session.exec(
        select(ActivityCount.count).where(
            ActivityCount.community_id == community_id,
            ActivityCount.user_id == user_id,
            ActivityCount.source == source,
        )
    )
    return found.one()


async def adjust(
    *, uow: UnitOfWork, community_id: uuid.UUID, data: PointAdjustmentCreate, actor: Principal
) -> tuple[PointEntry, int]:
    """A manual award or deduction with a reason (managers); balances still never go below 0."""
    await require_manager(uow, community_id, actor)
    await require_member(uow, community_id, data.user_id)
    applied, balance = await _apply(uow, community_id, data.user_id, data.points)
    entry = PointEntry(
        community_id=community_id,
        user_id=data.user_id,
        kind=EntryKind.adjustment,
        points=applied,
        reason=data.reason,
        actor_id=actor.subject,
    )
    uow.session.add(entry)
    await uow.session.flush()
    await _record_awarded(uow, entry, balance)
    await tiers.recompute(uow=uow, community_id=community_id, user_id=data.user_id)
    await uow.commit()
    return entry, balance


async def ledger(
    *,
    uow: UnitOfWork,
    community_id: uuid.UUID,
    user_id: uuid.UUID,
    actor: Principal,
    page: PageParams,
) -> list[PointEntry]:
    """A member's ledger entries, newest first (the member or a manager; limit+1 rows)."""
    await require_self_or_manager(uow, community_id, user_id, actor)
    stmt = (
        select(PointEntry)
        .where(PointEntry.community_id == community_id, PointEntry.user_id == user_id)
        .order_by(col(PointEntry.id).desc())
        .limit(page.limit + 1)
    )
    if page.after:
        stmt = stmt.where(col(PointEntry.id) < after_id(page))
    return list((await uow.session.exec(stmt)).all())


# --- leaderboards and standing --------------------------------------------------------------


def _rankings_off() -> Problem:
    return Problem(
        403,
        "leaderboards-disabled",
        "Leaderboards are switched off",
        "this community has switched leaderboards and rankings off",
    )


async def leaderboard(
    *,
    uow: UnitOfWork,
    community_id: uuid.UUID,
    window: str,
    limit: int,
    actor: Principal,
    now: datetime | None = None,
) -> Leaderboard:
    """The top-N members by points earned in a window (7d, 30d, all); redemptions not counted."""
    await require_reader(uow, community_id, actor)
    if not (await settings_of(uow, community_id)).leaderboards_enabled:
        raise _rankings_off()
    span = WINDOWS[window]
    since = (now or utcnow()) - span if span is not None else None
    if since is None:
        stmt = (
            select(PointBalance.user_id, PointBalance.earned)
            .where(PointBalance.community_id == community_id, PointBalance.earned > 0)
            .order_by(col(PointBalance.earned).desc(), col(PointBalance.user_id))
            .limit(limit)
        )
    else:
        total = func.sum(PointEntry.points).label("total")
        stmt = (
            select(PointEntry.user_id, total)
            .where(
                PointEntry.community_id == community_id,
                PointEntry.kind != EntryKind.redemption,
                PointEntry.created_at >= since,
            )
            .group_by(col(PointEntry.user_id))
            .having(func.sum(PointEntry.points) > 0)
            .order_by(total.desc(), col(PointEntry.user_id))
            .limit(limit)
        )
    rows = (await uow.session.exec(stmt)).all()  # type: ignore[call-overload]
    items = [LeaderboardRow(rank=i + 1, user_id=u, points=p) for i, (u, p) in enumerate(rows)]
    return Leaderboard(community_id=community_id, window=window, since=since, items=items)


async def standing(
    *, uow: UnitOfWork, community_id: uuid.UUID, user_id: uuid.UUID, actor: Principal
) -> MemberIncentives:
    """A member's balance, badges, titles, tier and rank (no rank when rankings are off)."""
    await require_self_or_manager(uow, community_id, user_id, actor)
    balance = await uow.session.get(PointBalance, (community_id, user_id))
    earned = balance.earned if balance else 0
    rank: int | None = None
    if (await settings_of(uow, community_id)).leaderboards_enabled and earned > 0:
        ahead = await uow.session.exec(
            select(func.count()).where(
                PointBalance.community_id == community_id, PointBalance.earned > earned
            )
        )
        rank = ahead.one() + 1
    awards = await _awards(uow, community_id, user_id)
    tier = await tiers.tier_of(uow, community_id, user_id)
    return MemberIncentives(
        community_id=community_id,
        user_id=user_id,
        balance=balance.balance if balance else 0,
        earned=earned,
        tier=tier.tier,
        badges=[a for a in awards if a.kind == BadgeKind.badge],
        titles=[a for a in awards if a.kind == BadgeKind.title],
        rank=rank,
    )


async def _awards(
    uow: UnitOfWork, community_id: uuid.UUID, user_id: uuid.UUID
) -> list[BadgeAwardPublic]:
    stmt = (
        select(BadgeAward, Badge)
        .join(Badge, col(Badge.id) == col(BadgeAward.badge_id))
        .where(
            BadgeAward.community_id == community_id,
            BadgeAward.user_id == user_id,
            col(BadgeAward.revoked_at).is_(None),
        )
        .order_by(col(BadgeAward.granted_at))
    )
    return [award_public(a, b) for a, b in (await uow.session.exec(stmt)).all()]


def award_public(award: BadgeAward, badge: Badge) -> BadgeAwardPublic:
    """A badge award as clients see it."""
    return BadgeAwardPublic(
        badge_id=badge.id,
        community_id=award.community_id,
        user_id=award.user_id,
        name=badge.name,
        kind=badge.kind,
        automatic=award.granted_by is None,
        granted_at=award.granted_at,
        revoked_at=award.revoked_at,
    )


# --- badges and titles ----------------------------------------------------------------------


async def create_badge(
    *, uow: UnitOfWork, community_id: uuid.UUID, data: BadgeCreate, actor: Principal
) -> Badge:
    """Define a badge or title (managers); names are unique per community."""
    await require_manager(uow, community_id, actor)
    if (data.rule_source is None) != (data.rule_threshold is None):
        raise Problem(
            422,
            "validation-error",
            "Invalid request",
            "rule_source and rule_threshold go together",
        )
    taken = await uow.session.exec(
        select(Badge.id).where(Badge.community_id == community_id, Badge.name == data.name)
    )
    if taken.first() is not None:
        raise conflict("badge-exists", f"a badge named {data.name!r} exists")
    badge = Badge.model_validate(
        data, update={"community_id": community_id, "created_by": actor.subject}
    )
    uow.session.add(badge)
    await uow.commit()
    return badge


async def list_badges(
    *, uow: UnitOfWork, community_id: uuid.UUID, actor: Principal, page: PageParams
) -> list[Badge]:
    """A community's badges and titles (members; limit+1 rows)."""
    await require_reader(uow, community_id, actor)
    stmt = (
        select(Badge)
        .where(Badge.community_id == community_id)
        .order_by(col(Badge.id))
        .limit(page.limit + 1)
    )
    if page.after:
        stmt = stmt.where(col(Badge.id) > after_id(page))
    return list((await uow.session.exec(stmt)).all())


async def _badge(uow: UnitOfWork, community_id: uuid.UUID, badge_id: uuid.UUID) -> Badge:
    badge = await uow.session.get(Badge, badge_id)
    if badge is None or badge.community_id != community_id:
        raise not_found("badge", badge_id)
    return badge


async def _grant(
    uow: UnitOfWork, badge: Badge, user_id: uuid.UUID, granted_by: uuid.UUID | None, reason: str
) -> BadgeAward:
    award = BadgeAward(
        badge_id=badge.id,
        community_id=badge.community_id,
        user_id=user_id,
        granted_by=granted_by,
        reason=reason,
    )
    uow.session.add(award)
    await uow.session.flush()
    await uow.record(
        BadgeGranted(
            badge_id=badge.id,
            community_id=badge.community_id,
            user_id=user_id,
            name=badge.name,
            kind=badge.kind,
            automatic=granted_by is None,
            granted_by=granted_by,
            granted_at=award.granted_at,
        ),
        subject=str(badge.community_id),
    )
    return award


async def _automatic_badges(
    uow: UnitOfWork, community_id: uuid.UUID, user_id: uuid.UUID, source: str, count: int
) -> None:
    held = select(BadgeAward.badge_id).where(BadgeAward.user_id == user_id)
    stmt = select(Badge).where(
        Badge.community_id == community_id,
        Badge.rule_source == source,
        col(Badge.rule_threshold) <= count,
        # Any row counts as held: a badge an admin revoked is not handed back by the rule.
        col(Badge.id).not_in(held),
    )
    for badge in (await uow.session.exec(stmt)).all():
        await _grant(uow, badge, user_id, None, f"{count} x {source}")


async def grant_badge(
    *,
    uow: UnitOfWork,
    community_id: uuid.UUID,
    badge_id: uuid.UUID,
    data: BadgeGrantCreate,
    actor: Principal,
) -> tuple[BadgeAward, Badge]:
    """Grant a badge or title by hand (managers); granting a revoked one restores it."""
    await require_manager(uow, community_id, actor)
    badge = await _badge(uow, community_id, badge_id)
    await require_member(uow, community_id, data.user_id)
    stmt = (
        select(BadgeAward)
        .where(BadgeAward.badge_id == badge_id, BadgeAward.user_id == data.user_id)
        .with_for_update()
    )
    award = (await uow.session.exec(stmt)).first()
    if award is not None and award.revoked_at is None:
        raise conflict("badge-held", "the member already holds this badge")
    if award is not None:
        await uow.session.delete(award)
        await uow.session.flush()
    award = await _grant(uow, badge, data.user_id, actor.subject, data.reason)
    await uow.commit()
    return award, badge


async def revoke_badge(
    *,
    uow: UnitOfWork,
    community_id: uuid.UUID,
    badge_id: uuid.UUID,
    user_id: uuid.UUID,
    data: BadgeRevokeRequest,
    actor: Principal,
) -> tuple[BadgeAward, Badge]:
    """Revoke a member's badge or title with a reason (managers)."""
    await require_manager(uow, community_id, actor)
    badge = await _badge(uow, community_id, badge_id)
    stmt = (
        select(BadgeAward)
        .where(BadgeAward.badge_id == badge_id, BadgeAward.user_id == user_id)
        .with_for_update()
    )
    award = (await uow.session.exec(stmt)).first()
    if award is None:
        raise not_found("badge award", user_id)
    if award.revoked_at is not None:
        raise conflict("badge-revoked", "this badge was already revoked")
    award.revoked_at, award.revoked_by, award.revoke_reason = utcnow(), actor.subject, data.reason
    uow.session.add(award)
    await uow.record(
        BadgeRevoked(
            badge_id=badge.id,
            community_id=community_id,
            user_id=user_id,
            name=badge.name,
            kind=badge.kind,
            revoked_by=actor.subject,
            reason=data.reason,
            revoked_at=award.revoked_at,
        ),
        subject=str(community_id),
    )
    await uow.commit()
    return award, badge


# --- perks ----------------------------------------------------------------------------------


async def create_perk(
    *, uow: UnitOfWork, community_id: uuid.UUID, data: PerkCreate, actor: Principal
) -> Perk:
    """Offer a perk (managers)."""
    await require_manager(uow, community_id, actor)
    perk = Perk.model_validate(
        data, update={"community_id": community_id, "created_by": actor.subject}
    )
    uow.session.add(perk)
    await uow.commit()
    return perk


async def update_perk(
    *,
    uow: UnitOfWork,
    community_id: uuid.UUID,
    perk_id: uuid.UUID,
    data: PerkUpdate,
    actor: Principal,
) -> Perk:
    """Change, restock or withdraw a perk (managers); past redemptions keep their cost."""
    await require_manager(uow, community_id, actor)
    perk = await uow.session.get(Perk, perk_id, with_for_update=True)
    if perk is None or perk.community_id != community_id:
        raise not_found("perk", perk_id)
    changes = data.model_dump(exclude_unset=True, exclude={"unlimited"})
    for key, value in changes.items():
        if value is not None:
            setattr(perk, key, value)
    if data.unlimited:
        perk.stock = None
    uow.session.add(perk)
    await uow.commit()
    return perk


async def list_perks(
    *, uow: UnitOfWork, community_id: uuid.UUID, actor: Principal, page: PageParams
) -> list[Perk]:
    """A community's active perks (members; limit+1 rows)."""
    await require_reader(uow, community_id, actor)
    stmt = (
        select(Perk)
        .where(Perk.community_id == community_id, col(Perk.active).is_(True))
        .order_by(col(Perk.id))
        .limit(page.limit + 1)
    )
    if page.after:
        stmt = stmt.where(col(Perk.id) > after_id(page))
    return list((await uow.session.exec(stmt)).all())


async def redeem(
    *, uow: UnitOfWork, community_id: uuid.UUID, perk_id: uuid.UUID, actor: Principal
) -> tuple[PerkRedemption, int]:
    """Spend points on a perk; the balance never goes below zero, however many race."""
    await require_reader(uow, community_id, actor)
    perk = await uow.session.get(Perk, perk_id)
    if perk is None or perk.community_id != community_id or not perk.active:
        raise not_found("perk", perk_id)
    # One conditional UPDATE is the whole guard: the database re-checks `balance >= cost` on
    # the locked row (PostgreSQL re-evaluates after a concurrent commit; SQLite serializes
    # writers), so N concurrent redemptions can never spend more than the balance.
    spent = await uow.session.execute(
        update(PointBalance)
        .where(
            col(PointBalance.community_id) == community_id,
            col(PointBalance.user_id) == actor.subject,
            col(PointBalance.balance) >= perk.cost,
        )
        .values(balance=PointBalance.balance - perk.cost, updated_at=utcnow())
        .returning(col(PointBalance.balance))
    )
    balance = spent.scalar_one_or_none()
    if balance is None:
        raise conflict("insufficient-points", f"this perk costs {perk.cost} points")
    if perk.stock is not None:
        taken = await uow.session.execute(
            update(Perk)
            .where(col(Perk.id) == perk_id, col(Perk.stock) > 0)
            .values(stock=Perk.stock - 1)  # type: ignore[operator]
        )
        if affected_rows(taken) == 0:
            raise conflict("out-of-stock", "this perk is out of stock")  # rolls the spend back
    entry = PointEntry(
        community_id=community_id,
        user_id=actor.subject,
        kind=EntryKind.redemption,
        points=-perk.cost,
        reason=f"redeemed: {perk.name}",
        actor_id=actor.subject,
    )
    redemption = PerkRedemption(
        perk_id=perk_id,
        community_id=community_id,
        user_id=actor.subject,
        cost=perk.cost,
        entry_id=entry.id,
    )
    uow.session.add(entry)
    uow.session.add(redemption)
    await uow.record(
        PerkRedeemed(
            redemption_id=redemption.id,
            perk_id=perk_id,
            community_id=community_id,
            user_id=actor.subject,
            perk_name=perk.name,
            cost=perk.cost,
            balance=balance,
            redeemed_at=redemption.redeemed_at,
        ),
        subject=str(community_id),
    )
    await uow.commit()
    return redemption, balance
