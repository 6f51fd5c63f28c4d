"""Community use cases: create, read, update, archive/restore (keyword-only, over a uow)."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import and_
from sqlmodel import col, select

from hearth_members.audit.service import audit
from hearth_members.communities.events import (
    CommunityArchived,
    CommunityCreated,
    CommunityRestored,
    CommunityUpdated,
)
from hearth_members.communities.models import (
    Community,
    CommunityCreate,
    CommunityRole,
    CommunityUpdate,
    Visibility,
)
from hearth_members.membership.guards import joined_event
from hearth_members.membership.models import Membership, MembershipStatus
from hearth_members.permissions import Action, check
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
