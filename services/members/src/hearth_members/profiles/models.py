"""The profile table: PII only as AES-GCM ciphertext plus keyed blind indexes."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field as PydanticField
from sqlmodel import Field

from hearth_members.models import MembersModel
from servicekit.ids import utcnow
from servicekit.types import UtcDateTime


class Profile(MembersModel, table=True):
    """A person's profile. `*_ct` are ciphertexts (`v1.<kid>.<b64 nonce+ct>`); `*_idx` blind."""

    __tablename__ = "profiles"

    user_id: uuid.UUID = Field(primary_key=True)
    display_name: str = Field(default="", max_length=120)
    email_ct: str | None = Field(default=None, max_length=1000)
    email_idx: str | None = Field(default=None, max_length=64, index=True)
    email_domain_idx: str | None = Field(default=None, max_length=64)
    email_verified: bool = False
    phone_ct: str | None = Field(default=None, max_length=1000)
    phone_idx: str | None = Field(default=None, max_length=64, index=True)
    key_id: str | None = Field(default=None, max_length=40, index=True)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    pseudonymised_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class ProfileUpdate(MembersModel):
    """Body of PUT /me/profile (the caller's own)."""

    display_name: str | None = Field(default=None, max_length=120)
    email: str | None = PydanticField(
        default=None, max_length=254, pattern=r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$"
    )
    phone: str | None = PydanticField(default=None, max_length=32, pattern=r"^\+?[0-9 ()-]{5,32}$")


class ProfilePublic(MembersModel):
    """A profile as its owner sees it (decrypted for them alone)."""

    user_id: uuid.UUID
    display_name: str
    email: str | None
    email_verified: bool
    phone: str | None
    updated_at: datetime
    pseudonymised_at: datetime | None


class ProfileLookupRequest(MembersModel):
    """Body of POST /profiles/lookup: an exact e-mail or phone (normalised like stored ones)."""

    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=32)
