"""Membership routes: join, leave, sanctions, roles, ownership, applications, invites, cleanup."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from hearth_members.communities.models import CommunityPublic
from hearth_members.communities.routes import community_out
from hearth_members.membership import applications, cleanup, invites, joining, ownership, sanctions
from hearth_members.membership.models import (
    ApplicationCreate,
    ApplicationDecisionRequest,
    ApplicationPublic,
    ApplicationStatus,
    BulkHandoverRequest,
    BulkHandoverResult,
    CleanupNoticeRequest,
    InviteCreate,
    InvitePublic,
    MembershipPublic,
    MembershipStatus,
    MuteRequest,
    OwnershipTransferRequest,
    RemovalRequest,
    RoleChangeRequest,
)
from servicekit.deps import RuntimeDep, UnitOfWorkDep
from servicekit.identity import CurrentPrincipal, StaffDep
from servicekit.pagination import Page, PageDep, make_page

router = APIRouter(tags=["communities"])
C = "/communities/{community_id}"


def _membership(m: object) -> MembershipPublic:
    return MembershipPublic.model_validate(m, from_attributes=True)


def _application(a: object) -> ApplicationPublic:
    return ApplicationPublic.model_validate(a, from_attributes=True)


@router.post(C + "/members", status_code=status.HTTP_201_CREATED)
async def join_community(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal, response: Response
) -> MembershipPublic:
    """Join an open community as the caller; joining again answers 200 with the same membership."""
    membership, created = await joining.join_community(
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
    rows = await joining.list_members(
        uow=uow, community_id=community_id, actor=actor, page=page, status=member_status
    )
    return make_page([_membership(m) for m in rows], page.limit, lambda m: [str(m.id)])


@router.delete(C + "/members/me", status_code=status.HTTP_204_NO_CONTENT)
async def leave_community(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> None:
    """Leave a community."""
    await joining.leave_community(uow=uow, community_id=community_id, actor=actor)


@router.post(C + "/members/{user_id}/removal")
async def remove_member(
    community_id: uuid.UUID,
    user_id: uuid.UUID,
    body: RemovalRequest,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
) -> MembershipPublic:
    """Remove a member ranked below the caller, with a reason they are told."""
    return _membership(
        await sanctions.remove_member(
            uow=uow, community_id=community_id, user_id=user_id, data=body, actor=actor
        )
    )


@router.post(C + "/members/{user_id}/ban")
async def ban_member(
    community_id: uuid.UUID,
    user_id: uuid.UUID,
    body: RemovalRequest,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
) -> MembershipPublic:
    """Ban someone from the community (owner, admin)."""
    return _membership(
        await sanctions.ban_member(
            uow=uow, community_id=community_id, user_id=user_id, data=body, actor=actor
        )
    )


@router.post(C + "/members/{user_id}/restore")
async def restore_member(
    community_id: uuid.UUID, user_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> MembershipPublic:
    """Lift a ban, or reinstate a removed member (owner, admin)."""
    return _membership(
        await sanctions.restore_member(
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
        await sanctions.mute(
            uow=uow, community_id=community_id, user_id=user_id, data=body, actor=actor
        )
    )


@router.put(C + "/members/{user_id}/role")
async def change_role(
    community_id: uuid.UUID,
    user_id: uuid.UUID,
    body: RoleChangeRequest,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
) -> MembershipPublic:
    """Change a member's role (see the permission matrix)."""
    return _membership(
        await ownership.change_role(
            uow=uow, community_id=community_id, user_id=user_id, new_role=body.role, actor=actor
        )
    )


@router.post(C + "/members/{user_id}/cleanup-notice")
async def give_cleanup_notice(
    community_id: uuid.UUID,
    user_id: uuid.UUID,
    body: CleanupNoticeRequest,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
    runtime: RuntimeDep,
) -> MembershipPublic:
    """Give notice of removal after a grace period, citing the evidence."""
    return _membership(
        await cleanup.give_cleanup_notice(
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
        await cleanup.withdraw_cleanup_notice(
            uow=uow, community_id=community_id, user_id=user_id, actor=actor
        )
    )


@router.post("/cleanup/run")
async def run_cleanup(uow: UnitOfWorkDep, actor: StaffDep) -> dict[str, int]:
    """Remove every member whose notice period is over now (staff; a loop also does this)."""
    return {"removed": await cleanup.run_due_removals(uow=uow)}


@router.post(C + "/ownership")
async def transfer_ownership(
    community_id: uuid.UUID,
    body: OwnershipTransferRequest,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
) -> CommunityPublic:
    """Hand the community to another member (owner, staff)."""
    return community_out(
        await ownership.transfer_ownership(
            uow=uow, community_id=community_id, data=body, actor=actor
        )
    )


@router.post("/handovers")
async def bulk_handover(
    body: BulkHandoverRequest, uow: UnitOfWorkDep, actor: StaffDep
) -> BulkHandoverResult:
    """Hand everything a departing person owns to a successor (staff), audited."""
    return await ownership.bulk_handover(uow=uow, data=body, actor=actor)


@router.post(C + "/applications", status_code=status.HTTP_201_CREATED)
async def apply(
    community_id: uuid.UUID, body: ApplicationCreate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> ApplicationPublic:
    """Apply to join; automatic rules may approve at once, otherwise a reviewer decides."""
    return _application(
        await applications.apply(uow=uow, community_id=community_id, data=body, actor=actor)
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
    rows = await applications.list_applications(
        uow=uow, community_id=community_id, actor=actor, page=page, status=application_status
    )
    return make_page([_application(a) for a in rows], page.limit, lambda a: [str(a.id)])


@router.post(C + "/applications/{application_id}/approve")
async def approve(
    community_id: uuid.UUID,
    application_id: uuid.UUID,
    body: ApplicationDecisionRequest,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
) -> ApplicationPublic:
    """Approve a pending application (owner, admin); a second decider gets 409."""
    return _application(
        await applications.decide(
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
    body: ApplicationDecisionRequest,
    uow: UnitOfWorkDep,
    actor: CurrentPrincipal,
) -> ApplicationPublic:
    """Reject a pending application with a reason the applicant sees (owner, admin)."""
    return _application(
        await applications.decide(
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
    rows = await applications.my_applications(uow=uow, actor=actor, page=page)
    return make_page([_application(a) for a in rows], page.limit, lambda a: [str(a.id)])


@router.post(C + "/invites", status_code=status.HTTP_201_CREATED)
async def create_invite(
    community_id: uuid.UUID, body: InviteCreate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> InvitePublic:
    """Create an invite link (owner, admin)."""
    invite = await invites.create_invite(uow=uow, community_id=community_id, data=body, actor=actor)
    return InvitePublic.model_validate(invite, from_attributes=True)


@router.get(C + "/invites")
async def list_invites(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> list[InvitePublic]:
    """A community's invite links (owner, admin)."""
    rows = await invites.list_invites(uow=uow, community_id=community_id, actor=actor)
    return [InvitePublic.model_validate(i, from_attributes=True) for i in rows]


@router.delete(C + "/invites/{invite_id}")
async def revoke_invite(
    community_id: uuid.UUID, invite_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> InvitePublic:
    """Revoke an invite link (owner, admin)."""
    invite = await invites.revoke_invite(
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
    membership, created = await invites.redeem_invite(uow=uow, token=token[:64], actor=actor)
    if not created:
        response.status_code = status.HTTP_200_OK
    return _membership(membership)
