"""Memberships, applications, invites, and the membership request/response models."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import Field as PydanticField
from pydantic import field_validator
from sqlalchemy import JSON, Column, Index, UniqueConstraint, text
from sqlmodel import Field

from hearth_members.communities.models import CommunityRole
from hearth_members.models import MembersModel, Versioned
from servicekit.ids import utcnow, uuid7
from servicekit.types import UtcDateTime


class MembershipStatus(StrEnum):
    """Where a membership stands."""

    active = "active"
    left = "left"
    removed = "removed"
    banned = "banned"


class Membership(Versioned, MembersModel, table=True):
    """One person's place in one community."""

    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("community_id", "user_id", name="uq_membership"),
        # Exactly one owner per community, enforced by the database as well as the code.
        Index(
            "uq_membership_one_owner",
            "community_id",
            unique=True,
            sqlite_where=text("role = 'owner'"),
            postgresql_where=text("role = 'owner'"),
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    community_id: uuid.UUID = Field(foreign_key="communities.id", index=True)
    user_id: uuid.UUID = Field(index=True)
    role: CommunityRole = CommunityRole.member
    status: MembershipStatus = MembershipStatus.active
    joined_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    channel: str | None = Field(default=None, max_length=60)
    muted_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    end_reason: str | None = Field(default=None, max_length=1000)
    ended_by: uuid.UUID | None = None
    evidence_ref: str | None = Field(default=None, max_length=300)
    # Cleanup: the member was given notice; removal happens at removal_due_at, not before.
    removal_due_at: datetime | None = Field(default=None, sa_type=UtcDateTime, index=True)
    removal_notice_reason: str | None = Field(default=None, max_length=1000)
    version: int = Field(default=1, sa_column_kwargs={"server_default": "1"})


class MembershipPublic(MembersModel):
    """A membership as clients see it."""

    id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    role: CommunityRole
    status: MembershipStatus
    joined_at: datetime
    channel: str | None
    muted_until: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    evidence_ref: str | None
    removal_due_at: datetime | None


class ApplicationStatus(StrEnum):
    """Where an application to join stands."""

    pending = "pending"
    approved = "approved"
    rejected = "rejected"


class Application(MembersModel, table=True):
    """A request to join an approval-policy community, with the applicant's answers."""

    __tablename__ = "applications"
    __table_args__ = (
        Index(
            "uq_application_pending",
            "community_id",
            "user_id",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    community_id: uuid.UUID = Field(foreign_key="communities.id", index=True)
    user_id: uuid.UUID = Field(index=True)
    answers: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: ApplicationStatus = ApplicationStatus.pending
    reviewer_id: uuid.UUID | None = Field(default=None, index=True)
    decided_by: uuid.UUID | None = None
    decided_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    reason: str | None = Field(default=None, max_length=1000)
    decided_automatically: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ApplicationCreate(MembersModel):
    """Body of POST /communities/{id}/applications."""

    answers: dict[str, str] = Field(default_factory=dict, max_length=20)


class ApplicationDecisionRequest(MembersModel):
    """Body of approve/reject; a rejection needs a reason the applicant will see."""

    reason: str | None = Field(default=None, max_length=1000)


class ApplicationPublic(MembersModel):
    """An application as the applicant and reviewers see it."""

    id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    answers: dict[str, str]
    status: ApplicationStatus
    reviewer_id: uuid.UUID | None
    decided_by: uuid.UUID | None
    decided_at: datetime | None
    reason: str | None
    decided_automatically: bool
    created_at: datetime


class Invite(MembersModel, table=True):
    """An invite link: a secret token, optional expiry and use limit, a channel for attribution."""

    __tablename__ = "invites"

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    community_id: uuid.UUID = Field(foreign_key="communities.id", index=True)
    token: str = Field(max_length=64, unique=True)
    channel: str = Field(default="link", max_length=60)
    default_role: CommunityRole = CommunityRole.member
    max_uses: int | None = None
    uses: int = 0
    expires_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_by: uuid.UUID
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


INVITE_ROLES = (CommunityRole.member, CommunityRole.moderator)


class InviteCreate(MembersModel):
    """Body of POST /communities/{id}/invites; a link grants at most the moderator role."""

    channel: str = PydanticField(
        default="link", min_length=1, max_length=60, pattern=r"^[A-Za-z0-9_.-]+$"
    )
    default_role: CommunityRole = CommunityRole.member
    max_uses: int | None = Field(default=None, ge=1, le=1_000_000)
    expires_at: datetime | None = None

    @field_validator("default_role")
    @classmethod
    def _at_most_moderator(cls, value: CommunityRole) -> CommunityRole:
        # A link can be forwarded to anyone: admin rights are granted to a person, by hand.
        if value not in INVITE_ROLES:
            raise ValueError("an invite link grants at most the moderator role")
        return value


class InvitePublic(MembersModel):
    """An invite as its managers see it (the token is the link's secret)."""

    id: uuid.UUID
    community_id: uuid.UUID
    token: str
    channel: str
    default_role: CommunityRole
    max_uses: int | None
    uses: int
    expires_at: datetime | None
    created_by: uuid.UUID
    created_at: datetime
    revoked_at: datetime | None


class RoleChangeRequest(MembersModel):
    """Body of PUT /communities/{id}/members/{user_id}/role."""

    role: CommunityRole


class RemovalRequest(MembersModel):
    """Body of a removal or ban: the reason is shown to the member."""

    reason: str = Field(min_length=1, max_length=1000)
    evidence_ref: str | None = Field(default=None, max_length=300)


class MuteRequest(MembersModel):
    """Body of a mute: until when (null lifts the mute) and why (shown to the member)."""

    muted_until: datetime | None
    reason: str = Field(min_length=1, max_length=1000)


class CleanupGrounds(StrEnum):
    """Why a member is being cleaned up (退出与清理: long inactive, or repeat violator)."""

    inactivity = "inactivity"  # evidence: metrics' inactivity record (filled in when omitted)
    violations = "violations"  # evidence: moderation's record, always cited by the caller


class CleanupNoticeRequest(MembersModel):
    """Body of a cleanup notice: removal after a grace period, with the evidence referenced."""

    grounds: CleanupGrounds
    reason: str = Field(min_length=1, max_length=1000)
    evidence_ref: str | None = Field(default=None, max_length=300)
    grace_days: float | None = Field(default=None, ge=0, le=365)


class OwnershipTransferRequest(MembersModel):
    """Body of an ownership hand-over."""

    new_owner_id: uuid.UUID
    reason: str = Field(default="", max_length=1000)


class DepartingRole(StrEnum):
    """What becomes of the departing person in the communities they handed over."""

    keep = "keep"  # they stay an admin (an ownership transfer's usual outcome)
    demote = "demote"  # they stay, as a plain member
    remove = "remove"  # they are removed, with the hand-over's reason (notified, audited)


class BulkHandoverRequest(MembersModel):
    """Body of a departing person's hand-over of everything they own to a successor."""

    from_user_id: uuid.UUID
    to_user_id: uuid.UUID
    reason: str = Field(min_length=1, max_length=1000)
    departing: DepartingRole = DepartingRole.keep


class BulkHandoverResult(MembersModel):
    """What a bulk hand-over moved, and what became of the departing person."""

    communities: list[uuid.UUID]
    applications: list[uuid.UUID]
    goals: list[uuid.UUID]
    departing: DepartingRole = DepartingRole.keep
