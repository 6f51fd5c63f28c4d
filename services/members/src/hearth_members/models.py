"""Members' tables: communities and memberships (plus the kernel's outbox/inbox/dead letters)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field as PydanticField
from pydantic import field_validator
from sqlalchemy import JSON, Column, Index, UniqueConstraint, text
from sqlalchemy.orm import declared_attr, registry
from sqlmodel import Field, SQLModel

from servicekit.ids import utcnow, uuid7
from servicekit.tables import KitTables
from servicekit.types import CleanInput, UtcDateTime


class MembersModel(SQLModel, CleanInput, registry=registry()):
    """Base of members' tables: its own metadata, because members owns its own database."""


class Versioned:
    """A row whose `version` the ORM bumps on every UPDATE (mapper `version_id_col`).

    The one place a version grows: members' snapshots carry it (hearth_members.snapshots), and
    a write that lost a race to another one fails (StaleDataError, a 409) instead of undoing it.
    """

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        return {"version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]


metadata = MembersModel.metadata
kit = KitTables(metadata)


class CommunityKind(StrEnum):
    """What a community is for (社群类型)."""

    internal = "internal"
    customer = "customer"
    partner = "partner"
    supplier = "supplier"
    hybrid = "hybrid"
    official = "official"


class JoinPolicy(StrEnum):
    """How people get in (入群规则)."""

    open = "open"
    approval = "approval"
    invite_only = "invite_only"


class Visibility(StrEnum):
    """Who may see a community that they have not joined."""

    public = "public"
    private = "private"


class CommunityRole(StrEnum):
    """Permission roles inside one community."""

    owner = "owner"
    admin = "admin"
    moderator = "moderator"
    member = "member"


class EntryQuestion(CleanInput):
    """A question an applicant answers (入群问题)."""

    id: str = PydanticField(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")
    text: str = PydanticField(min_length=1, max_length=500)
    required: bool = True


def _https(value: str | None) -> str | None:
    if value is not None and not value.startswith("https://"):
        raise ValueError("avatar_url must be an https:// URL")
    return value


def _clean_name(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("name must not be blank")
    return value


class CommunityProfile(MembersModel):
    """What a community says about itself."""

    name: str = Field(min_length=1, max_length=120)
    positioning: str = Field(default="", max_length=500)
    description: str = Field(default="", max_length=4000)
    rules: str = Field(default="", max_length=8000)
    announcement: str = Field(default="", max_length=2000)
    avatar_url: str | None = Field(default=None, max_length=500)

    @field_validator("name")
    @classmethod
    def _strip_name(cls, value: str) -> str:
        return _clean_name(value)

    @field_validator("avatar_url")
    @classmethod
    def _https_only(cls, value: str | None) -> str | None:
        return _https(value)


class CommunitySettings(MembersModel):
    """How people get in and how they are welcomed."""

    join_policy: JoinPolicy = JoinPolicy.open
    visibility: Visibility = Visibility.public
    entry_questions: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    # Automatic approval: a verified e-mail in one of these domains (internal communities) and/or
    # every required question answered. Nothing configured: every application goes to review.
    auto_approve_email_domains: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    auto_approve_when_answered: bool = False
    welcome_template: str = Field(default="Welcome to {community}, {name}!", max_length=2000)
    welcome_templates_by_channel: dict[str, str] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )


class CommunityBase(CommunityProfile, CommunitySettings):
    """Fields a client may set when creating a community."""

    kind: CommunityKind


class CommunityCreate(CommunityBase):
    """Body of POST /communities."""

    entry_questions: list[EntryQuestion] = Field(default_factory=list, max_length=20)  # type: ignore[assignment]
    auto_approve_email_domains: list[str] = []
    welcome_templates_by_channel: dict[str, str] = {}


class CommunityUpdate(MembersModel):
    """Body of PATCH /communities/{id}: profile and settings; unset fields stay."""

    name: str | None = Field(default=None, min_length=1, max_length=120)
    kind: CommunityKind | None = None
    positioning: str | None = Field(default=None, max_length=500)
    description: str | None = Field(default=None, max_length=4000)
    rules: str | None = Field(default=None, max_length=8000)
    announcement: str | None = Field(default=None, max_length=2000)
    avatar_url: str | None = Field(default=None, max_length=500)
    join_policy: JoinPolicy | None = None
    visibility: Visibility | None = None
    entry_questions: list[EntryQuestion] | None = Field(default=None, max_length=20)
    auto_approve_email_domains: list[str] | None = Field(default=None, max_length=50)
    auto_approve_when_answered: bool | None = None
    welcome_template: str | None = Field(default=None, max_length=2000)
    welcome_templates_by_channel: dict[str, str] | None = None

    @field_validator("name")
    @classmethod
    def _strip_name(cls, value: str | None) -> str | None:
        return None if value is None else _clean_name(value)

    @field_validator("avatar_url")
    @classmethod
    def _https_only(cls, value: str | None) -> str | None:
        return _https(value)


class Community(Versioned, CommunityBase, table=True):
    """A community (社群)."""

    __tablename__ = "communities"

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    owner_id: uuid.UUID = Field(index=True)
    created_by: uuid.UUID
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    archived_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    version: int = Field(default=1, sa_column_kwargs={"server_default": "1"})


class CommunityPublic(CommunityBase):
    """A community as clients see it."""

    id: uuid.UUID
    owner_id: uuid.UUID
    created_by: uuid.UUID
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None
    entry_questions: list[EntryQuestion]  # type: ignore[assignment]
    auto_approve_email_domains: list[str]
    welcome_templates_by_channel: dict[str, str]


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


class ApplicationDecision(MembersModel):
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


class Goal(MembersModel, table=True):
    """A measurable community goal; progress comes from metrics' measurements, not stored here."""

    __tablename__ = "goals"

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    community_id: uuid.UUID = Field(foreign_key="communities.id", index=True)
    metric: str = Field(max_length=120)
    target: float
    deadline: date
    owner_id: uuid.UUID = Field(index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


# Metrics' catalogue (GET /api/metrics/catalogue): public, stable names that metrics adds to and
# never renames. Members keeps its own copy instead of calling metrics (no synchronous calls
# between contexts); the end-to-end test checks that the two lists agree.
GoalMetric = Literal["joins", "posts_submitted", "posts_published", "registrations"]


class GoalCreate(MembersModel):
    """Body of POST /communities/{id}/goals."""

    metric: GoalMetric
    target: float = Field(gt=0)
    deadline: date
    owner_id: uuid.UUID | None = None


class GoalStatus(StrEnum):
    """Where a goal stands against its latest measurement."""

    no_data = "no_data"  # metrics has not measured the metric in this community yet
    on_track = "on_track"  # below target, deadline not passed
    achieved = "achieved"  # current >= target
    missed = "missed"  # deadline passed and current < target


class GoalPublic(MembersModel):
    """A goal with its latest measurement from metrics (see README: goals)."""

    id: uuid.UUID
    community_id: uuid.UUID
    metric: str
    target: float
    deadline: date
    owner_id: uuid.UUID
    created_at: datetime
    current: float | None = None
    progress: float | None = None  # current / target, not capped: 1.2 means 120 %
    measured_at: datetime | None = None
    status: GoalStatus = GoalStatus.no_data


class CommunityMeasurement(MembersModel, table=True):
    """Read model of metrics' community.measured facts: the newest value per community metric."""

    __tablename__ = "community_measurements"

    # No foreign key to communities: a read model takes what its producer says, in any order.
    community_id: uuid.UUID = Field(primary_key=True)
    metric: str = Field(primary_key=True, max_length=120)
    value: float
    measured_at: datetime = Field(sa_type=UtcDateTime)


class RoleChange(MembersModel):
    """Body of PUT /communities/{id}/members/{user_id}/role."""

    role: CommunityRole


class Removal(MembersModel):
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


class CleanupNotice(MembersModel):
    """Body of a cleanup notice: removal after a grace period, with the evidence referenced."""

    grounds: CleanupGrounds
    reason: str = Field(min_length=1, max_length=1000)
    evidence_ref: str | None = Field(default=None, max_length=300)
    grace_days: float | None = Field(default=None, ge=0, le=365)


class OwnershipTransfer(MembersModel):
    """Body of an ownership hand-over."""

    new_owner_id: uuid.UUID
    reason: str = Field(default="", max_length=1000)


class DepartingRole(StrEnum):
    """What becomes of the departing person in the communities they handed over."""

    keep = "keep"  # they stay an admin (an ownership transfer's usual outcome)
    demote = "demote"  # they stay, as a plain member
    remove = "remove"  # they are removed, with the hand-over's reason (notified, audited)


class BulkHandover(MembersModel):
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
