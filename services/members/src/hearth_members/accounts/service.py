"""Account use cases: create, verify a password (constant-time failure path), provision."""

from __future__ import annotations

import asyncio
import logging
import uuid

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from pydantic import ValidationError
from sqlalchemy import String, cast, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from hearth_members.accounts.models import (
    Account,
    AccountCreate,
    AccountStatus,
    AccountUpdate,
    Identity,
    ProvisionRequest,
    VerifyRequest,
)
from hearth_members.audit.service import audit
from hearth_members.profiles.models import ProfileUpdate
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.problems import Problem, conflict, forbidden, not_found

log = logging.getLogger(__name__)
_hasher = PasswordHasher()  # argon2id with the library's (RFC 9106 low-memory) parameters
# Verified against when the login does not exist, so that a wrong login costs as much time as a
# wrong password and response times do not reveal which logins exist.
_DUMMY_HASH = _hasher.hash("hearth-dummy-password-for-timing")


def require_gateway(actor: Principal, scope: str, *, gateway_subject: uuid.UUID) -> None:
    """Only the gateway's own service principal, holding the scope, may call these routes."""
    # The scope alone is not enough: the gateway also mints service principals for API keys
    # (their subject is the key's id), and no business system may check passwords.
    if actor.kind != "service" or actor.subject != gateway_subject or scope not in actor.scopes:
        raise forbidden(f"only the gateway, with the {scope} scope, may call this")


async def platform_staff(*, uow: UnitOfWork, limit: int = 50) -> list[uuid.UUID]:
    """Active accounts holding a platform staff role (admin, operator), at most `limit`."""
    # Roles are a JSON list; its text form ('["admin", "member"]') is searchable the same way
    # on SQLite and PostgreSQL, and staff are few.
    roles = cast(col(Account.roles), String)
    stmt = (
        select(Account.id)
        .where(
            Account.status == AccountStatus.active,
            or_(roles.like('%"admin"%'), roles.like('%"operator"%')),
        )
        .order_by(col(Account.id))
        .limit(limit)
    )
    return list((await uow.session.exec(stmt)).all())


def _identity(account: Account) -> Identity:
    return Identity(
        subject=account.id, name=account.name, roles=list(account.roles), status=account.status
    )


def _invalid() -> Problem:
    return Problem(401, "invalid-credentials", "Invalid credentials", "login or password is wrong")


async def verify(*, uow: UnitOfWork, data: VerifyRequest) -> Identity:
    """Check a login and password; one uniform failure whatever was wrong."""
    key = data.login.strip().casefold()
    account = (await uow.session.exec(select(Account).where(Account.login_key == key))).first()
    stored = account.password_hash if account is not None and account.password_hash else None
    try:
        # argon2 costs tens of milliseconds of CPU: off the event loop.
        await asyncio.to_thread(_hasher.verify, stored or _DUMMY_HASH, data.password)
        ok = stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    if not ok or account is None:
        raise _invalid()
    if account.status != AccountStatus.active:
        raise Problem(403, "account-disabled", "Account disabled", "this account is disabled")
    if _hasher.check_needs_rehash(stored or ""):
        account.password_hash = await asyncio.to_thread(_hasher.hash, data.password)
        uow.session.add(account)
        await uow.commit()
    return _identity(account)


async def create_account(*, uow: UnitOfWork, data: AccountCreate, actor: Principal) -> Account:
    """Create a local account (platform admins); the login is unique ignoring case."""
    account = Account(
        login=data.login,
        login_key=data.login.casefold(),
        password_hash=await asyncio.to_thread(_hasher.hash, data.password),
        name=data.name,
        roles=sorted(set(data.roles)),
    )
    uow.session.add(account)
    audit(
        uow=uow,
        actor_id=actor.subject,
        action="account.created",
        target_type="account",
        target_id=account.id,
        details={"roles": account.roles},
    )
    try:
        await uow.session.flush()
    except IntegrityError as exc:
        await uow.session.rollback()
        raise conflict("login-taken", "this login is taken") from exc
    if data.email:
        await _set_email(uow, account.id, data.email, verified=False, name=data.name)
    await uow.commit()
    return account


async def _set_email(
    uow: UnitOfWork, user_id: uuid.UUID, email: str, *, verified: bool, name: str | None
) -> None:
    from hearth_members.profiles.service import write_profile

    try:
        data = ProfileUpdate(email=email, display_name=name)
    except ValidationError:
        # An issuer's odd address must not fail the sign-in: keep the account, skip the e-mail.
        log.warning("account %s: the issuer's e-mail address is not valid; not stored", user_id)
        return
    await write_profile(uow=uow, user_id=user_id, data=data, email_verified=verified)


async def get_account(*, uow: UnitOfWork, account_id: uuid.UUID) -> Account:
    """One account or 404."""
    account = await uow.session.get(Account, account_id)
    if account is None:
        raise not_found("account", account_id)
    return account


async def update_account(
    *, uow: UnitOfWork, account_id: uuid.UUID, data: AccountUpdate, actor: Principal
) -> Account:
    """Enable/disable an account or change its platform roles (platform admins), audited."""
    account = await get_account(uow=uow, account_id=account_id)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if "roles" in changes:
        account.roles = sorted(set(changes["roles"]))
    if "status" in changes:
        account.status = changes["status"]
    account.updated_at = utcnow()
    uow.session.add(account)
    audit(
        uow=uow,
        actor_id=actor.subject,
        action="account.updated",
        target_type="account",
        target_id=account.id,
        details={k: str(v) if not isinstance(v, list) else v for k, v in changes.items()},
    )
    await uow.commit()
    return account


async def provision(*, uow: UnitOfWork, data: ProvisionRequest) -> Identity:
    """The Hearth user for an external issuer's subject, created on first sight (idempotent)."""
    where = (Account.issuer == data.issuer) & (Account.external_subject == data.external_subject)
    account = (await uow.session.exec(select(Account).where(where))).first()
    if account is None:
        account = Account(
            issuer=data.issuer,
            external_subject=data.external_subject,
            name=data.name or "",
            roles=sorted(set(data.roles)) or ["member"],
        )
        uow.session.add(account)
        try:
            await uow.session.flush()
            if data.email and "@" in data.email:
                # The issuer vouches for the address: it counts as verified (auto-approval rules).
                await _set_email(uow, account.id, data.email, verified=True, name=data.name)
            await uow.commit()
        except IntegrityError:  # a concurrent first login of the same person created it
            await uow.session.rollback()
            account = (await uow.session.exec(select(Account).where(where))).one()
    elif (data.name and data.name != account.name) or (
        data.roles and sorted(set(data.roles)) != account.roles
    ):
        # The issuer is the source of truth for name and roles; status stays Hearth's decision.
        account.name = data.name or account.name
        account.roles = sorted(set(data.roles)) or account.roles
        account.updated_at = utcnow()
        uow.session.add(account)
        await uow.commit()
    return _identity(account)
