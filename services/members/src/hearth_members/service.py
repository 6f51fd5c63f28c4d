"""Community use cases: create, read, update, archive/restore, goals (keyword-only, over a uow)."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_
from sqlmodel import col, select

from hearth_members.audit.service import audit
from hearth_members.events import (
    CommunityArchived,
    CommunityCreated,
    CommunityRestored,
    CommunityUpdated,
    MemberJoined,
)
from hearth_members.models import (
    Community,
    CommunityCreate,
    CommunityMeasurement,
    CommunityRole,
    CommunityUpdate,
    Goal,
    GoalCreate,
    GoalPublic,
    GoalStatus,
    Membership,
    MembershipStatus,
    Visibility,
)
from hearth_members.permissions import Action, check
from servicekit.db import upsert_insert
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.pagination import PageParams, after_id
from servicekit.problems import Problem, conflict, not_found

_VARIABLE = re.compile(r"\{(name|community|channel)\}")


def render_template(template: str, values: dict[str, str]) -> str:
    """Substitute {name}, {community}, {channel} only; anything else stays literal text.

    Deliberately not str.format: a template like "{0.__class__}" must not reach attributes.
    """
    return _VARIABLE.sub(lambda m: values.get(m.group(1), m.group(0)), template)


async def create_community(
    *, uow: UnitOfWork, data: CommunityCreate, actor: Principal
) -> Community:
    """Create a community owned by the actor, with the owner's membership."""
    community = Community.model_validate(
        data.model_dump(), update={"created_by": actor.subject, "owner_id": actor.subject}
    )
    owner = Membership(community_id=community.id, user_id=actor.subject, role=CommunityRole.owner)
    uow.session.add(community)
    uow.session.add(owner)
    await uow.record(
        CommunityCreated(
            community_id=community.id,
            name=community.name,
            kind=community.kind,
            join_policy=community.join_policy,
            visibility=community.visibility,
            owner_id=actor.subject,
            created_at=community.created_at,
        ),
        subject=str(community.id),
    )
    await uow.record(joined_event(owner), subject=str(community.id))
    await uow.commit()
    return community


async def load_community(uow: UnitOfWork, community_id: uuid.UUID) -> Community:
    """A community by id, or 404."""
    community = await uow.session.get(Community, community_id)
    if community is None:
        raise not_found("community", community_id)
    return community


async def visible_community(
    *, uow: UnitOfWork, community_id: uuid.UUID, actor: Principal
) -> tuple[Community, CommunityRole | None]:
    """A community the actor may see (private: members and staff only) and the actor's role."""
    # One round trip for both: nearly every community-scoped request starts here.
    stmt = (
        select(Community, Membership)
        .outerjoin(
            Membership,
            and_(
                col(Membership.community_id) == col(Community.id),
                col(Membership.user_id) == actor.subject,
            ),
        )
        .where(col(Community.id) == community_id)
    )
    row = (await uow.session.exec(stmt)).first()
    if row is None:
        raise not_found("community", community_id)
    community, membership = row
    active = membership is not None and membership.status == MembershipStatus.active
    role = membership.role if active and membership is not None else None
    if community.visibility == Visibility.private and not actor.is_staff and role is None:
        raise not_found("community", community_id)  # do not reveal private communities
    return community, role


async def get_community(*, uow: UnitOfWork, community_id: uuid.UUID, actor: Principal) -> Community:
    """A community the actor may see."""
    community, _ = await visible_community(uow=uow, community_id=community_id, actor=actor)
    return community


async def acting_role(
    *, uow: UnitOfWork, community_id: uuid.UUID, actor: Principal, action: Action
) -> tuple[Community, CommunityRole | None]:
    """The community and the actor's role, after checking the matrix allows the action."""
    community, role = await visible_community(uow=uow, community_id=community_id, actor=actor)
    check(actor, role, action)
    return community, role


async def list_communities(
    *, uow: UnitOfWork, actor: Principal, page: PageParams, include_archived: bool = False
) -> list[Community]:
    """Communities the actor may see, in creation order (limit+1 rows)."""
    stmt = select(Community).order_by(col(Community.id)).limit(page.limit + 1)
    if not actor.is_staff:
        mine = select(Membership.community_id).where(
            Membership.user_id == actor.subject, Membership.status == MembershipStatus.active
        )
        stmt = stmt.where(
            (col(Community.visibility) == Visibility.public) | col(Community.id).in_(mine)
        )
    if not include_archived:
        stmt = stmt.where(col(Community.archived_at).is_(None))
    if page.after:
        stmt = stmt.where(col(Community.id) > after_id(page))
    return list((await uow.session.exec(stmt)).all())


async def update_community(
    *, uow: UnitOfWork, community_id: uuid.UUID, data: CommunityUpdate, actor: Principal
) -> Community:
    """Change a community's profile or settings (owner, admin)."""
    community, _ = await acting_role(
        uow=uow, community_id=community_id, actor=actor, action=Action.update
    )
    changes = data.model_dump(exclude_unset=True, mode="json")
    changes = {k: v for k, v in changes.items() if v is not None or k == "avatar_url"}
    if "auto_approve_email_domains" in changes:
        changes["auto_approve_email_domains"] = sorted(
            {d.strip().lower().lstrip("@") for d in changes["auto_approve_email_domains"]}
        )
    by_channel = changes.get("welcome_templates_by_channel") or {}
    for template in [changes.get("welcome_template", ""), *by_channel.values()]:
        if len(template) > 2000:
            raise Problem(422, "template-too-long", "Invalid request", "templates are ≤2000 chars")
    for key, value in changes.items():
        setattr(community, key, value)
    community.updated_at = utcnow()
    uow.session.add(community)
    await uow.record(
        CommunityUpdated(
            community_id=community.id,
            changed=sorted(changes),
            name=community.name,
            kind=community.kind,
            join_policy=community.join_policy,
            visibility=community.visibility,
            updated_at=community.updated_at,
        ),
        subject=str(community.id),
    )
    await uow.commit()
    return community


async def set_archived(
    *, uow: UnitOfWork, community_id: uuid.UUID, actor: Principal, archived: bool
) -> Community:
    """Archive or restore a community (owner, staff)."""
    community, _ = await acting_role(
        uow=uow, community_id=community_id, actor=actor, action=Action.archive
    )
    if archived == (community.archived_at is not None):
        raise conflict("archive-state", "already archived" if archived else "not archived")
    now = utcnow()
    community.archived_at = now if archived else None
    community.updated_at = now
    uow.session.add(community)
    event = (
        CommunityArchived(community_id=community.id, archived_by=actor.subject, archived_at=now)
        if archived
        else CommunityRestored(
            community_id=community.id, restored_by=actor.subject, restored_at=now
        )
    )
    await uow.record(event, subject=str(community.id))
    audit(
        uow=uow,
        actor_id=actor.subject,
        action="community.archived" if archived else "community.restored",
        target_type="community",
        target_id=community.id,
        community_id=community.id,
    )
    await uow.commit()
    return community


def ensure_not_archived(community: Community) -> None:
    """Refuse changes to membership of an archived community."""
    if community.archived_at is not None:
        raise conflict("community-archived", "this community is archived")


async def create_goal(
    *, uow: UnitOfWork, community_id: uuid.UUID, data: GoalCreate, actor: Principal
) -> GoalPublic:
    """Add a measurable goal on a catalogue metric (owner, admin)."""
    await acting_role(uow=uow, community_id=community_id, actor=actor, action=Action.manage_goals)
    goal = Goal(
        community_id=community_id,
        metric=data.metric,
        target=data.target,
        deadline=data.deadline,
        owner_id=data.owner_id or actor.subject,
    )
    uow.session.add(goal)
    await uow.commit()
    measurement = await uow.session.get(CommunityMeasurement, (community_id, goal.metric))
    return goal_view(goal, measurement, today=utcnow().date())


async def list_goals(
    *, uow: UnitOfWork, community_id: uuid.UUID, actor: Principal
) -> list[GoalPublic]:
    """A visible community's goals, each with its latest measurement (one query)."""
    await visible_community(uow=uow, community_id=community_id, actor=actor)
    stmt = (
        select(Goal, CommunityMeasurement)
        .outerjoin(
            CommunityMeasurement,
            and_(
                col(CommunityMeasurement.community_id) == col(Goal.community_id),
                col(CommunityMeasurement.metric) == col(Goal.metric),
            ),
        )
        .where(Goal.community_id == community_id)
        .order_by(col(Goal.id))
    )
    today = utcnow().date()
    return [goal_view(g, m, today=today) for g, m in (await uow.session.exec(stmt)).all()]


async def record_measurement(
    *,
    uow: UnitOfWork,
    community_id: uuid.UUID,
    metric: str,
    value: float,
    measured_at: datetime,
) -> None:
    """Keep a community metric's measurement unless a newer one is stored already."""
    table: Any = CommunityMeasurement.__table__  # type: ignore[attr-defined]
    stmt = upsert_insert(uow.session, table).values(
        community_id=community_id, metric=metric, value=value, measured_at=measured_at
    )
    # One conditional statement: the relay promises order per aggregate only, and redelivery
    # after a failure can bring an old measurement back late; it must not replace a newer one
    # (an equal time keeps the stored row). Concurrent handlers cannot interleave a read and a
    # write here either.
    stmt = stmt.on_conflict_do_update(
        index_elements=["community_id", "metric"],
        set_={"value": stmt.excluded.value, "measured_at": stmt.excluded.measured_at},
        where=table.c.measured_at < stmt.excluded.measured_at,
    )
    await uow.session.execute(stmt)


def goal_view(goal: Goal, measurement: CommunityMeasurement | None, *, today: date) -> GoalPublic:
    """A goal with its current value, progress and status against the latest measurement."""
    view = GoalPublic.model_validate(goal, from_attributes=True)
    if measurement is None:
        return view  # no_data: metrics has not measured this metric here yet
    current = measurement.value
    if current >= goal.target:
        status = GoalStatus.achieved
    elif today > goal.deadline:  # the deadline day itself still counts
        status = GoalStatus.missed
    else:
        status = GoalStatus.on_track
    return view.model_copy(
        update={
            "current": current,
            "progress": current / goal.target,
            "measured_at": measurement.measured_at,
            "status": status,
        }
    )


async def delete_goal(
    *, uow: UnitOfWork, community_id: uuid.UUID, goal_id: uuid.UUID, actor: Principal
) -> None:
    """Remove a goal (owner, admin)."""
    await acting_role(uow=uow, community_id=community_id, actor=actor, action=Action.manage_goals)
    goal = await uow.session.get(Goal, goal_id)
    if goal is None or goal.community_id != community_id:
        raise not_found("goal", goal_id)
    await uow.session.delete(goal)
    await uow.commit()


def joined_event(membership: Membership) -> MemberJoined:
    """The joined event of a membership."""
    return MemberJoined(
        community_id=membership.community_id,
        user_id=membership.user_id,
        membership_id=membership.id,
        role=membership.role,
        joined_at=membership.joined_at,
        channel=membership.channel,
    )


async def membership_of(
    uow: UnitOfWork, community_id: uuid.UUID, user_id: uuid.UUID
) -> Membership | None:
    """The user's membership row in a community, whatever its status."""
    stmt = select(Membership).where(
        Membership.community_id == community_id, Membership.user_id == user_id
    )
    return (await uow.session.exec(stmt)).first()


async def active_membership(
    uow: UnitOfWork, community_id: uuid.UUID, user_id: uuid.UUID
) -> Membership | None:
    """The user's active membership, if any."""
    found = await membership_of(uow, community_id, user_id)
    return found if found is not None and found.status == MembershipStatus.active else None
