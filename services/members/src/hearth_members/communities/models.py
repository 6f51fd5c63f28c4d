"""The communities table and its request/response models."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field as PydanticField
from pydantic import field_validator
from sqlalchemy import JSON, Column
from sqlmodel import Field

from hearth_members.models import MembersModel, Versioned
from servicekit.ids import utcnow, uuid7
from servicekit.types import CleanInput, UtcDateTime


def _https(value: str | None) -> str | None:
    if value is not None and not value.startswith("https://"):
        raise ValueError("avatar_url must be an https:// URL")
    return value


def _clean_name(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("name must not be blank")
    return value


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
