"""Profile use cases: write encrypted, look up by blind index, export, pseudonymise, rotate."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import col, select

from hearth_members.audit.service import audit
from hearth_members.profiles import privacy
from hearth_members.profiles.crypto import Keyring, keyring_from
from hearth_members.profiles.events import MemberPseudonymised
from hearth_members.profiles.models import Profile, ProfilePublic, ProfileUpdate
from hearth_members.settings import MembersSettings
from servicekit import idempotency
from servicekit.deps import UnitOfWork
from servicekit.ids import utcnow
from servicekit.problems import Problem, not_found
from servicekit.runtime import Key, ServiceRuntime, extension, runtime_of, settings_of

KEYRING: Key[Keyring] = Key("members.keyring")


def keyring_of(runtime: ServiceRuntime) -> Keyring:
    """The runtime's keyring (built once per process)."""
    return extension(runtime, KEYRING, lambda: keyring_from(settings_of(runtime, MembersSettings)))


def _ring(uow: UnitOfWork) -> Keyring:
    return keyring_of(runtime_of(uow.session))


def domain_index(uow: UnitOfWork, domain: str) -> str:
    """The blind index of an e-mail domain (for automatic approval rules)."""
    return _ring(uow).blind_index(domain.lstrip("@"), field="email_domain")


def _public(ring: Keyring, profile: Profile) -> ProfilePublic:
    uid = str(profile.user_id)
    return ProfilePublic(
        user_id=profile.user_id,
        display_name=profile.display_name,
        email=ring.decrypt(profile.email_ct, context=f"email:{uid}") if profile.email_ct else None,
        email_verified=profile.email_verified,
        phone=ring.decrypt(profile.phone_ct, context=f"phone:{uid}") if profile.phone_ct else None,
        updated_at=profile.updated_at,
        pseudonymised_at=profile.pseudonymised_at,
    )


async def get_profile(*, uow: UnitOfWork, user_id: uuid.UUID) -> ProfilePublic:
    """The user's own profile, decrypted."""
    profile = await uow.session.get(Profile, user_id)
    if profile is None:
        profile = Profile(user_id=user_id)
    return _public(_ring(uow), profile)


async def update_profile(
    *, uow: UnitOfWork, user_id: uuid.UUID, data: ProfileUpdate, email_verified: bool = False
) -> ProfilePublic:
    """Write the user's profile and commit; e-mail and phone only as ciphertext + blind index."""
    public = await write_profile(uow=uow, user_id=user_id, data=data, email_verified=email_verified)
    await uow.commit()
    return public


async def write_profile(
    *, uow: UnitOfWork, user_id: uuid.UUID, data: ProfileUpdate, email_verified: bool = False
) -> ProfilePublic:
    """Write the profile in the caller's transaction (not committed)."""
    ring = _ring(uow)
    profile = await uow.session.get(Profile, user_id) or Profile(user_id=user_id)
    if profile.pseudonymised_at is not None:
        raise Problem(409, "pseudonymised", "Conflict", "this profile was deleted on request")
    uid = str(user_id)
    if data.display_name is not None:
        profile.display_name = data.display_name.strip()
    if data.email is not None:
        email = data.email.strip()
        profile.email_ct = ring.encrypt(email, context=f"email:{uid}")
        profile.email_idx = ring.blind_index(email, field="email")
        profile.email_domain_idx = ring.blind_index(email.rsplit("@", 1)[1], field="email_domain")
        profile.email_verified = email_verified
    if data.phone is not None:
        phone = "".join(ch for ch in data.phone if ch.isdigit() or ch == "+")
        profile.phone_ct = ring.encrypt(phone, context=f"phone:{uid}")
        profile.phone_idx = ring.blind_index(phone, field="phone")
    profile.key_id = ring.active_kid
    profile.updated_at = utcnow()
    uow.session.add(profile)
    return _public(ring, profile)


async def find_by_email(*, uow: UnitOfWork, email: str) -> uuid.UUID | None:
    """The user with this e-mail, found through the blind index (no decryption of others)."""
    idx = _ring(uow).blind_index(email, field="email")
    row = (await uow.session.exec(select(Profile.user_id).where(Profile.email_idx == idx))).first()
    return row


async def find_by_phone(*, uow: UnitOfWork, phone: str) -> uuid.UUID | None:
    """The user with this phone number, through the blind index."""
    phone = "".join(ch for ch in phone if ch.isdigit() or ch == "+")
    idx = _ring(uow).blind_index(phone, field="phone")
    row = (await uow.session.exec(select(Profile.user_id).where(Profile.phone_idx == idx))).first()
    return row


async def email_address_of(*, runtime: ServiceRuntime, user_id: uuid.UUID) -> str | None:
    """The user's decrypted e-mail address (for the SMTP adapter), or None."""
    async with runtime.db.session() as session:
        profile = await session.get(Profile, user_id)
        ciphertext = profile.email_ct if profile is not None else None
    if not ciphertext:
        return None
    return keyring_of(runtime).decrypt(ciphertext, context=f"email:{user_id}")


async def rotate_keys(*, uow: UnitOfWork, batch: int = 500) -> int:
    """Re-encrypt every profile not under the active key; returns how many were rewritten."""
    ring = _ring(uow)
    stmt = (
        select(Profile)
        .where((col(Profile.key_id).is_(None)) | (col(Profile.key_id) != ring.active_kid))
        .where(col(Profile.pseudonymised_at).is_(None))
        .limit(batch)
    )
    rows = list((await uow.session.exec(stmt)).all())
    for profile in rows:
        uid = str(profile.user_id)
        if profile.email_ct:
            plain = ring.decrypt(profile.email_ct, context=f"email:{uid}")
            profile.email_ct = ring.encrypt(plain, context=f"email:{uid}")
        if profile.phone_ct:
            plain = ring.decrypt(profile.phone_ct, context=f"phone:{uid}")
            profile.phone_ct = ring.encrypt(plain, context=f"phone:{uid}")
        profile.key_id = ring.active_kid
        uow.session.add(profile)
    await uow.commit()
    return len(rows)


async def export_data(*, uow: UnitOfWork, user_id: uuid.UUID) -> dict[str, Any]:
    """Everything members holds about the user, as one JSON document (PIPL/GDPR access)."""
    profile = await get_profile(uow=uow, user_id=user_id)
    return {
        "user_id": str(user_id),
        "exported_at": utcnow().isoformat(),
        "profile": profile.model_dump(mode="json"),
        **await privacy.export_sections(uow, user_id),  # each package's own rows (app.py)
    }


async def pseudonymise(*, uow: UnitOfWork, user_id: uuid.UUID, actor_id: uuid.UUID) -> None:
    """Delete on request: wipe the profile and personal texts; ids stay for ledgers and audit."""
    # Stored responses (sealed, but a replay would still hand them out): gone with the person.
    await idempotency.forget(uow.session, runtime_of(uow.session).tables, user_id)
    profile = await uow.session.get(Profile, user_id) or Profile(user_id=user_id)
    if profile.pseudonymised_at is not None:
        return
    profile.display_name = ""
    profile.email_ct = profile.email_idx = profile.email_domain_idx = None
    profile.phone_ct = profile.phone_idx = None
    profile.email_verified = False
    profile.pseudonymised_at = profile.updated_at = utcnow()
    uow.session.add(profile)
    # Application answers, notification bodies, unsent deliveries, the account: each
    # package's eraser (registered in app.py) wipes its own.
    await privacy.erase_everywhere(uow, user_id)
    await uow.record(
        MemberPseudonymised(user_id=user_id, pseudonymised_at=profile.pseudonymised_at),
        subject=str(user_id),
    )
    audit(
        uow=uow,
        actor_id=actor_id,
        action="user.pseudonymised",
        target_type="user",
        target_id=user_id,
    )
    await uow.commit()


async def require_profile(uow: UnitOfWork, user_id: uuid.UUID) -> Profile:
    """A stored profile or 404."""
    profile = await uow.session.get(Profile, user_id)
    if profile is None:
        raise not_found("profile", user_id)
    return profile
