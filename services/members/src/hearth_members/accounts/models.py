"""The accounts table and its request/response models."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field as PydanticField
from pydantic import field_validator
from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field

from hearth_members.models import MembersModel
from servicekit.ids import utcnow, uuid7
from servicekit.types import UtcDateTime

PlatformRole = Literal["admin", "operator", "member"]


class AccountStatus(StrEnum):
    """Whether an account may sign in."""

    active = "active"
    disabled = "disabled"


class Account(MembersModel, table=True):
    """A Hearth user's account: local login (argon2id) and/or an external issuer's subject."""

    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("issuer", "external_subject", name="uq_account_external"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)  # the Hearth subject
    login: str | None = Field(default=None, max_length=80)
    login_key: str | None = Field(default=None, max_length=80, unique=True)  # casefolded
    password_hash: str | None = Field(default=None, max_length=200)
    name: str = Field(default="", max_length=120)
    roles: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: AccountStatus = AccountStatus.active
    issuer: str | None = Field(default=None, max_length=300)
    external_subject: str | None = Field(default=None, max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class AccountCreate(MembersModel):
    """Body of POST /accounts (platform admins)."""

    # No "@": a login that could be an e-mail address would be PII kept in plain text (and in
    # the gateway's login throttling); the e-mail belongs in the encrypted profile instead.
    login: str = PydanticField(min_length=3, max_length=80, pattern=r"^[A-Za-z0-9_.-]+$")
    password: str = Field(min_length=10, max_length=256)
    name: str = Field(min_length=1, max_length=120)
    email: str | None = PydanticField(
        default=None, max_length=254, pattern=r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$"
    )
    roles: list[PlatformRole] = Field(default_factory=lambda: ["member"], max_length=3)


class AccountUpdate(MembersModel):
    """Body of PATCH /accounts/{id}."""

    status: AccountStatus | None = None
    roles: list[PlatformRole] | None = Field(default=None, max_length=3)


class AccountPublic(MembersModel):
    """An account as admins see it (never the hash)."""

    id: uuid.UUID
    login: str | None
    name: str
    roles: list[str]
    status: AccountStatus
    issuer: str | None
    created_at: datetime


class VerifyRequest(MembersModel):
    """Body of POST /internal/accounts/verify."""

    login: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1024)


class Identity(MembersModel):
    """Who a verified or provisioned account is, for the gateway's token."""

    subject: uuid.UUID
    name: str
    roles: list[str]
    status: str


class ProvisionRequest(MembersModel):
    """Body of POST /internal/accounts/provision (a user from an external OIDC issuer)."""

    issuer: str = Field(min_length=1, max_length=300)
    external_subject: str = Field(min_length=1, max_length=300)
    email: str | None = Field(default=None, max_length=254)
    name: str | None = Field(default=None, max_length=120)
    roles: list[str] = Field(default_factory=list, max_length=10)

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, value: list[str]) -> list[str]:
        allowed = {"admin", "operator", "member"}
        bad = [r for r in value if r not in allowed]
        if bad:
            raise ValueError(f"unknown platform roles: {bad}")
        return value
