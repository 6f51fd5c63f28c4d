"""Tier use cases: decide a member's tier from rules, activity and points; publish changes."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlmodel import col, select

from hearth_members.incentives.access import require_manager, require_self_or_manager
from hearth_members.incentives.models import PointBalance
from hearth_members.tiers.events import TierChanged
from hearth_members.tiers.models import (
    DEFAULT_PRIVILEGES,
    MemberActivity,
    MemberTier,
    MemberTierPublic,
    RecomputeResult,
    Tier,
    TierRules,
    TierRulesUpdate,
)
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow


async def effective_rules(uow: UnitOfWork, community_id: uuid.UUID) -> TierRules:
    """The community's tier rules, or the defaults (unsaved) when it has set none."""
    rules = await uow.session.get(TierRules, community_id)
    return rules or TierRules(community_id=community_id, privileges=dict(DEFAULT_PRIVILEGES))


def decide(
    rules: TierRules, *, earned: int, activity: MemberActivity | None, now: datetime
) -> Tier:
    """The tier the rules give: quiet → regular; points → core/active; recently active → active."""
    if activity is not None and activity.inactive_since is not None:
        return Tier.regular  # metrics says they went quiet: earned standing waits for their return
    if earned >= rules.core_min_points:
        return Tier.core
    recently = (
        activity is not None
        and activity.last_active_at is not None
        and now - activity.last_active_at <= timedelta(days=rules.active_within_days)
    )
    if earned >= rules.active_min_points or recently:
        return Tier.active
    return Tier.regular


def privileges_of(rules: TierRules, tier: Tier | str) -> list[str]:
    """What a tier grants in this community."""
    return sorted(rules.privileges.get(str(tier), []))


async def recompute(
    *,
    uow: UnitOfWork,
    community_id: uuid.UUID,
    user_id: uuid.UUID,
    now: datetime | None = None,
    rules: TierRules | None = None,
) -> bool:
    """Recompute one member's tier (no commit); records members.tier.changed.v1 if it moved."""
    now = now or utcnow()
    rules = rules or await effective_rules(uow, community_id)
    balance = await uow.session.get(PointBalance, (community_id, user_id))
    activity = await uow.session.get(MemberActivity, (community_id, user_id))
    tier = decide(rules, earned=balance.earned if balance else 0, activity=activity, now=now)
    current = await uow.session.get(MemberTier, (community_id, user_id), with_for_update=True)
    before = Tier(current.tier) if current is not None else Tier.regular
    if tier == before:
        return False
    if current is None:
        current = MemberTier(community_id=community_id, user_id=user_id)
    current.tier, current.changed_at = tier, now
    uow.session.add(current)
    await uow.record(
        TierChanged(
            community_id=community_id,
            user_id=user_id,
            from_tier=before,
            to_tier=tier,
            privileges=privileges_of(rules, tier),
            changed_at=now,
        ),
        subject=str(community_id),
    )
    return True


async def recompute_community(
    *, uow: UnitOfWork, community_id: uuid.UUID, now: datetime | None = None
) -> RecomputeResult:
    """Recompute everyone with points, activity or a tier in the community (no commit)."""
    members, changed = await _recompute_all(uow, community_id, now)
    return RecomputeResult(community_id=community_id, members=members, changed=len(changed))


async def _recompute_all(
    uow: UnitOfWork, community_id: uuid.UUID, now: datetime | None
) -> tuple[int, set[uuid.UUID]]:
    rules = await effective_rules(uow, community_id)
    users: set[uuid.UUID] = set()
    for model in (PointBalance, MemberActivity, MemberTier):
        stmt = select(model.user_id).where(model.community_id == community_id)  # type: ignore[attr-defined]
        users.update((await uow.session.exec(stmt)).all())
    changed: set[uuid.UUID] = set()
    for user_id in sorted(users):
        if await recompute(
            uow=uow, community_id=community_id, user_id=user_id, now=now, rules=rules
        ):
            changed.add(user_id)
    return len(users), changed


async def get_rules(*, uow: UnitOfWork, community_id: uuid.UUID, actor: Principal) -> TierRules:
    """A community's effective tier rules (managers)."""
    await require_manager(uow, community_id, actor)
    return await effective_rules(uow, community_id)


async def set_rules(
    *, uow: UnitOfWork, community_id: uuid.UUID, data: TierRulesUpdate, actor: Principal
) -> TierRules:
    """Replace a community's tier rules and recompute its members' tiers."""
    await require_manager(uow, community_id, actor)
    rules = await uow.session.get(TierRules, community_id, with_for_update=True)
    before = dict((rules or await effective_rules(uow, community_id)).privileges)
    if rules is None:
        rules = TierRules(community_id=community_id)
    rules.core_min_points = data.core_min_points
    rules.active_min_points = data.active_min_points
    rules.active_within_days = data.active_within_days
    rules.privileges = {str(k): sorted(set(v)) for k, v in data.privileges.items()}
    rules.updated_by, rules.updated_at = actor.subject, utcnow()
    uow.session.add(rules)
    await uow.session.flush()
    now = utcnow()
    _, moved = await _recompute_all(uow, community_id, now)
    # Members who kept their tier but whose tier now grants something else: re-announce the
    # tier (from_tier == to_tier) so read models of privileges (content's) stay right.
    regranted = [
        tier for tier in Tier if sorted(before.get(str(tier), [])) != privileges_of(rules, tier)
    ]
    if regranted:
        stmt = select(MemberTier).where(
            MemberTier.community_id == community_id, col(MemberTier.tier).in_(regranted)
        )
        for row in (await uow.session.exec(stmt)).all():
            if row.user_id not in moved:
                await uow.record(
                    TierChanged(
                        community_id=community_id,
                        user_id=row.user_id,
                        from_tier=row.tier,
                        to_tier=row.tier,
                        privileges=privileges_of(rules, row.tier),
                        changed_at=now,
                    ),
                    subject=str(community_id),
                )
    await uow.commit()
    return rules


async def recompute_now(
    *, uow: UnitOfWork, community_id: uuid.UUID, actor: Principal
) -> RecomputeResult:
    """Recompute every tier of a community now (managers)."""
    await require_manager(uow, community_id, actor)
    result = await recompute_community(uow=uow, community_id=community_id)
    await uow.commit()
    return result


async def member_tier(
    *, uow: UnitOfWork, community_id: uuid.UUID, user_id: uuid.UUID, actor: Principal
) -> MemberTierPublic:
    """A member's tier and privileges (the member themself or a manager)."""
    await require_self_or_manager(uow, community_id, user_id, actor)
    return await tier_of(uow, community_id, user_id)


async def tier_of(uow: UnitOfWork, community_id: uuid.UUID, user_id: uuid.UUID) -> MemberTierPublic:
    """A member's current tier (regular when never computed)."""
    rules = await effective_rules(uow, community_id)
    row = await uow.session.get(MemberTier, (community_id, user_id))
    tier = Tier(row.tier) if row is not None else Tier.regular
    return MemberTierPublic(
        community_id=community_id,
        user_id=user_id,
        tier=tier,
        privileges=privileges_of(rules, tier),
        changed_at=row.changed_at if row is not None else None,
    )


async def record_activity(
    *,
    uow: UnitOfWork,
    community_id: uuid.UUID,
    user_id: uuid.UUID,
    active_at: datetime | None = None,
    inactive_since: datetime | None = None,
    inactive_event_id: uuid.UUID | None = None,
) -> None:
    """Update the activity read model from metrics' facts and recompute the tier (no commit)."""
    activity = await uow.session.get(MemberActivity, (community_id, user_id), with_for_update=True)
    if activity is None:
        activity = MemberActivity(community_id=community_id, user_id=user_id)
    if active_at is not None:
        if activity.last_active_at is None or active_at > activity.last_active_at:
            activity.last_active_at = active_at
        # Only activity after the quiet spot clears it (facts can arrive out of order).
        if activity.inactive_since is not None and active_at >= activity.inactive_since:
            activity.inactive_since = None
            activity.inactive_event_id = None
    if inactive_since is not None:
        if activity.last_active_at is None or activity.last_active_at <= inactive_since:
            activity.inactive_since = inactive_since
            activity.inactive_event_id = inactive_event_id
    uow.session.add(activity)
    await uow.session.flush()
    await recompute(uow=uow, community_id=community_id, user_id=user_id)


async def inactivity_record(
    *, uow: UnitOfWork, community_id: uuid.UUID, user_id: uuid.UUID
) -> str | None:
    """A reference to metrics' inactivity fact that still stands for the member, or None."""
    activity = await uow.session.get(MemberActivity, (community_id, user_id))
    if activity is None or activity.inactive_since is None or activity.inactive_event_id is None:
        return None
    return f"metrics:inactive:{activity.inactive_event_id}"
