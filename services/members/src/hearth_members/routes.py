"""Members' community and membership routes (served at /, public at /api/members)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from hearth_members import lifecycle, service
from hearth_members.audit.models import AuditPublic
from hearth_members.audit.service import list_audit
from hearth_members.models import (
    ApplicationCreate,
    ApplicationDecision,
    ApplicationPublic,
    ApplicationStatus,
    BulkHandover,
    BulkHandoverResult,
    CleanupNotice,
    CommunityCreate,
    CommunityPublic,
    CommunityUpdate,
    GoalCreate,
    GoalPublic,
    InviteCreate,
    InvitePublic,
    MembershipPublic,
    MembershipStatus,
    MuteRequest,
    OwnershipTransfer,
    Removal,
    RoleChange,
)
from hearth_members.permissions import Action
from servicekit.deps import RuntimeDep, UnitOfWorkDep
from servicekit.identity import CurrentPrincipal, StaffDep
from servicekit.pagination import Page, PageDep, make_page

router = APIRouter(tags=["communities"])
C = "/communities/{community_id}"


def _community(c: object) -> CommunityPublic:
    return CommunityPublic.model_validate(c, from_attributes=True)


def _membership(m: object) -> MembershipPublic:
    return MembershipPublic.model_validate(m, from_attributes=True)


def _application(a: object) -> ApplicationPublic:
    return ApplicationPublic.model_validate(a, from_attributes=True)


@router.post("/communities", status_code=status.HTTP_201_CREATED)
async def create_community(
    body: CommunityCreate, uow: UnitOfWorkDep, actor: StaffDep
) -> CommunityPublic:
    """Create a community (platform admins and operators); the creator becomes its owner."""
    return _community(await service.create_community(uow=uow, data=body, actor=actor))


@router.get("/communities")
async def list_communities(
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
    page: PageDep,
    include_archived: bool = Query(False),
) -> Page[CommunityPublic]:
    """Communities the caller may see."""
    rows = await service.list_communities(
        uow=uow, actor=actor, page=page, include_archived=include_archived
    )
    return make_page([_community(c) for c in rows], page.limit, lambda c: [str(c.id)])


@router.get(C)
async def get_community(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> CommunityPublic:
    """One community (private ones: members and staff only)."""
    return _community(await service.get_community(uow=uow, community_id=community_id, actor=actor))


@router.patch(C)
async def update_community(
    community_id: uuid.UUID, body: CommunityUpdate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> CommunityPublic:
    """Change profile and settings (owner, admin)."""
    return _community(
        await service.update_community(uow=uow, community_id=community_id, data=body, actor=actor)
    )


@router.post(C + "/archive")
async def archive_community(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> CommunityPublic:
    """Archive a community (owner, staff)."""
    return _community(
        await service.set_archived(uow=uow, community_id=community_id, actor=actor, archived=True)
    )


@router.post(C + "/restore")
async def restore_community(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> CommunityPublic:
    """Restore an archived community (owner, staff)."""
    return _community(
        await service.set_archived(uow=uow, community_id=community_id, actor=actor, archived=False)
    )


@router.get(C + "/goals")
async def list_goals(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> list[GoalPublic]:
    """A community's goals with progress and status from metrics' latest measurements."""
    return await service.list_goals(uow=uow, community_id=community_id, actor=actor)


@router.post(C + "/goals", status_code=status.HTTP_201_CREATED)
async def create_goal(
    community_id: uuid.UUID, body: GoalCreate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> GoalPublic:
    """Add a goal on a metric of metrics' catalogue (owner, admin)."""
    return await service.create_goal(uow=uow, community_id=community_id, data=body, actor=actor)


@router.delete(C + "/goals/{goal_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_goal(
    community_id: uuid.UUID, goal_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> None:
    """Remove a goal (owner, admin)."""
    await service.delete_goal(uow=uow, community_id=community_id, goal_id=goal_id, actor=actor)


@router.post(C + "/members", status_code=status.HTTP_201_CREATED)
async def join_community(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal, response: Response
) -> MembershipPublic:
    """Join an open community as the caller; joining again answers 200 with the same membership."""
    membership, created = await lifecycle.join_community(
        uow=uow, community_id=community_id, actor=actor
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return _membership(membership)


@router.get(C + "/members")
async def list_members(
    community_id: uuid.UUID,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
    page: PageDep,
    member_status: Annotated[MembershipStatus, Query(alias="status")] = MembershipStatus.active,
) -> Page[MembershipPublic]:
    """Members of a community (other statuses: owner, admin)."""
    rows = await lifecycle.list_members(
        uow=uow, community_id=community_id, actor=actor, page=page, status=member_status
    )
    return make_page([_membership(m) for m in rows], page.limit, lambda m: [str(m.id)])


@router.delete(C + "/members/me", status_code=status.HTTP_204_NO_CONTENT)
async def leave_community(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> None:
    """Leave a community."""
    await lifecycle.leave_community(uow=uow, community_id=community_id, actor=actor)


@router.post(C + "/members/{user_id}/removal")
async def remove_member(
    community_id: uuid.UUID,
    user_id: uuid.UUID,
    body: Removal,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
) -> MembershipPublic:
    """Remove a member ranked below the caller, with a reason they are told."""
    return _membership(
        await lifecycle.remove_member(
            uow=uow, community_id=community_id, user_id=user_id, data=body, actor=actor
        )
    )


@router.post(C + "/members/{user_id}/ban")
async def ban_member(
    community_id: uuid.UUID,
    user_id: uuid.UUID,
    body: Removal,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
) -> MembershipPublic:
    """Ban someone from the community (owner, admin)."""
    return _membership(
        await lifecycle.ban_member(
            uow=uow, community_id=community_id, user_id=user_id, data=body, actor=actor
        )
    )


@router.post(C + "/members/{user_id}/restore")
async def restore_member(
    community_id: uuid.UUID, user_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> MembershipPublic:
    """Lift a ban, or reinstate a removed member (owner, admin)."""
    return _membership(
        await lifecycle.restore_member(
            uow=uow, community_id=community_id, user_id=user_id, actor=actor
        )
    )


@router.post(C + "/members/{user_id}/mute")
async def mute_member(
    community_id: uuid.UUID,
    user_id: uuid.UUID,
    body: MuteRequest,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
) -> MembershipPublic:
    """Mute a member ranked below the caller until a time (null lifts it)."""
    return _membership(
        await lifecycle.mute(
            uow=uow, community_id=community_id, user_id=user_id, data=body, actor=actor
        )
    )


@router.put(C + "/members/{user_id}/role")
async def change_role(
    community_id: uuid.UUID,
    user_id: uuid.UUID,
    body: RoleChange,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
) -> MembershipPublic:
    """Change a member's role (see the permission matrix)."""
    return _membership(
        await lifecycle.change_role(
            uow=uow, community_id=community_id, user_id=user_id, new_role=body.role, actor=actor
        )
    )


@router.post(C + "/members/{user_id}/cleanup-notice")
async def give_cleanup_notice(
    community_id: uuid.UUID,
    user_id: uuid.UUID,
    body: CleanupNotice,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
    runtime: RuntimeDep,
) -> MembershipPublic:
    """Give notice of removal after a grace period, citing the evidence."""
    return _membership(
        await lifecycle.give_cleanup_notice(
            uow=uow,
            community_id=community_id,
            user_id=user_id,
            data=body,
            actor=actor,
            default_grace_days=runtime.settings.cleanup_grace_days,  # type: ignore[attr-defined]
        )
    )


@router.delete(C + "/members/{user_id}/cleanup-notice")
async def withdraw_cleanup_notice(
    community_id: uuid.UUID, user_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> MembershipPublic:
    """Withdraw a pending cleanup removal."""
    return _membership(
        await lifecycle.withdraw_cleanup_notice(
            uow=uow, community_id=community_id, user_id=user_id, actor=actor
        )
    )


@router.post("/cleanup/run")
async def run_cleanup(uow: UnitOfWorkDep, actor: StaffDep) -> dict[str, int]:
    """Remove every member whose notice period is over now (staff; a loop also does this)."""
    return {"removed": await lifecycle.run_due_removals(uow=uow)}


@router.post(C + "/ownership")
async def transfer_ownership(
    community_id: uuid.UUID, body: OwnershipTransfer, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> CommunityPublic:
    """Hand the community to another member (owner, staff)."""
    return _community(
        await lifecycle.transfer_ownership(
            uow=uow, community_id=community_id, data=body, actor=actor
        )
    )


@router.post("/handovers")
async def bulk_handover(
    body: BulkHandover, uow: UnitOfWorkDep, actor: StaffDep
) -> BulkHandoverResult:
    """Hand everything a departing person owns to a successor (staff), audited."""
    return await lifecycle.bulk_handover(uow=uow, data=body, actor=actor)


@router.post(C + "/applications", status_code=status.HTTP_201_CREATED)
async def apply(
    community_id: uuid.UUID, body: ApplicationCreate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> ApplicationPublic:
    """Apply to join; automatic rules may approve at once, otherwise a reviewer decides."""
    return _application(
        await lifecycle.apply(uow=uow, community_id=community_id, data=body, actor=actor)
    )


@router.get(C + "/applications")
async def list_applications(
    community_id: uuid.UUID,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
    page: PageDep,
    application_status: Annotated[ApplicationStatus | None, Query(alias="status")] = None,
) -> Page[ApplicationPublic]:
    """Applications for reviewers (owner, admin)."""
    rows = await lifecycle.list_applications(
        uow=uow, community_id=community_id, actor=actor, page=page, status=application_status
    )
    return make_page([_application(a) for a in rows], page.limit, lambda a: [str(a.id)])


@router.post(C + "/applications/{application_id}/approve")
async def approve(
    community_id: uuid.UUID,
    application_id: uuid.UUID,
    body: ApplicationDecision,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
) -> ApplicationPublic:
    """Approve a pending application (owner, admin); a second decider gets 409."""
    return _application(
        await lifecycle.decide(
            uow=uow,
            community_id=community_id,
            application_id=application_id,
            actor=actor,
            approve=True,
            reason=body.reason,
        )
    )


@router.post(C + "/applications/{application_id}/reject")
async def reject(
    community_id: uuid.UUID,
    application_id: uuid.UUID,
    body: ApplicationDecision,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
) -> ApplicationPublic:
    """Reject a pending application with a reason the applicant sees (owner, admin)."""
    return _application(
        await lifecycle.decide(
            uow=uow,
            community_id=community_id,
            application_id=application_id,
            actor=actor,
            approve=False,
            reason=body.reason,
        )
    )


@router.get("/me/applications")
async def my_applications(
    uow: UnitOfWorkDep, actor: CurrentPrincipal, page: PageDep
) -> Page[ApplicationPublic]:
    """The caller's applications, with decisions and reasons."""
    rows = await lifecycle.my_applications(uow=uow, actor=actor, page=page)
    return make_page([_application(a) for a in rows], page.limit, lambda a: [str(a.id)])


@router.post(C + "/invites", status_code=status.HTTP_201_CREATED)
async def create_invite(
    community_id: uuid.UUID, body: InviteCreate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> InvitePublic:
    """Create an invite link (owner, admin)."""
    invite = await lifecycle.create_invite(
        uow=uow, community_id=community_id, data=body, actor=actor
    )
    return InvitePublic.model_validate(invite, from_attributes=True)


@router.get(C + "/invites")
async def list_invites(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> list[InvitePublic]:
    """A community's invite links (owner, admin)."""
    rows = await lifecycle.list_invites(uow=uow, community_id=community_id, actor=actor)
    return [InvitePublic.model_validate(i, from_attributes=True) for i in rows]


@router.delete(C + "/invites/{invite_id}")
async def revoke_invite(
    community_id: uuid.UUID, invite_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> InvitePublic:
    """Revoke an invite link (owner, admin)."""
    invite = await lifecycle.revoke_invite(
        uow=uow, community_id=community_id, invite_id=invite_id, actor=actor
    )
    return InvitePublic.model_validate(invite, from_attributes=True)


@router.post("/invites/{token}/redeem", status_code=status.HTTP_201_CREATED)
async def redeem_invite(
    token: str,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
    response: Response,
) -> MembershipPublic:
    """Join through an invite link (409 once it is used up, 410 when expired or revoked)."""
    membership, created = await lifecycle.redeem_invite(uow=uow, token=token[:64], actor=actor)
    if not created:
        response.status_code = status.HTTP_200_OK
    return _membership(membership)


@router.get(C + "/audit")
async def community_audit(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal, page: PageDep
) -> Page[AuditPublic]:
    """A community's audit trail (owner, admin)."""
    await service.acting_role(
        uow=uow, community_id=community_id, actor=actor, action=Action.read_audit
    )
    rows = await list_audit(uow=uow, page=page, community_id=community_id)
    items = [AuditPublic.model_validate(r, from_attributes=True) for r in rows]
    return make_page(items, page.limit, lambda r: [str(r.id)])


@router.get("/audit")
async def platform_audit(
    uow: UnitOfWorkDep, actor: StaffDep, page: PageDep, actor_id: uuid.UUID | None = None
) -> Page[AuditPublic]:
    """The whole audit trail (staff)."""
    rows = await list_audit(uow=uow, page=page, actor_id=actor_id)
    items = [AuditPublic.model_validate(r, from_attributes=True) for r in rows]
    return make_page(items, page.limit, lambda r: [str(r.id)])
