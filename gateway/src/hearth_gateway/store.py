"""Refresh-token families (rotation with reuse detection) and API keys, in the gateway database."""

from __future__ import annotations

import builtins
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update

from hearth_gateway.models import api_keys, refresh_families, refresh_tokens
from servicekit.db import Database, affected_rows
from servicekit.ids import utcnow, uuid7

REFRESH_PREFIX = "rt_"
API_KEY_PREFIX = "hk_"


def digest(secret: str) -> str:
    """SHA-256 hex digest of a high-entropy secret.

    Right for random 256-bit secrets (refresh tokens, API keys): nobody can brute-force 2^256
    inputs, so a slow password hash (argon2) would only add latency to every API-key request.
    """
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Grant:
    """Who a refresh token belongs to, and its replacement after rotation."""

    subject: uuid.UUID
    roles: frozenset[str]
    name: str | None
    family_id: uuid.UUID
    refresh_token: str


class RefreshRefused(Exception):
    """The refresh token is unknown, expired, revoked or was reused."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RefreshStore:
    """Issues, rotates and revokes refresh tokens; a reused token revokes its family."""

    def __init__(self, db: Database, *, ttl_seconds: int) -> None:
        self.db = db
        self.ttl = timedelta(seconds=ttl_seconds)

    async def start(self, *, subject: uuid.UUID, roles: frozenset[str], name: str | None) -> Grant:
        """A new family (one login) and its first refresh token."""
        now = utcnow()
        family_id = uuid7()
        token = REFRESH_PREFIX + secrets.token_urlsafe(32)
        async with self.db.session() as session:
            await session.execute(
                insert(refresh_families).values(
                    id=family_id,
                    subject=subject,
                    name=name,
                    roles=sorted(roles),
                    created_at=now,
                    expires_at=now + self.ttl,
                )
            )
            await session.execute(
                insert(refresh_tokens).values(
                    token_hash=digest(token),
                    family_id=family_id,
                    created_at=now,
                    expires_at=now + self.ttl,
                )
            )
            await session.commit()
        return Grant(subject, roles, name, family_id, token)

    async def rotate(self, token: str) -> Grant:
        """Exchange a current refresh token for a new one; reuse revokes the whole family."""
        now = utcnow()
        hashed = digest(token)
        async with self.db.session() as session:
            row = (
                (
                    await session.execute(
                        select(
                            refresh_tokens.c.family_id,
                            refresh_tokens.c.expires_at.label("token_expires_at"),
                            refresh_families.c.expires_at.label("family_expires_at"),
                            refresh_families.c.subject,
                            refresh_families.c.roles,
                            refresh_families.c.name,
                            refresh_families.c.revoked_at,
                        )
                        .join(refresh_families, refresh_families.c.id == refresh_tokens.c.family_id)
                        .where(refresh_tokens.c.token_hash == hashed)
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                raise RefreshRefused("unknown")
            if row["revoked_at"] is not None:
                raise RefreshRefused("revoked")
            if _expired(row["token_expires_at"], now) or _expired(row["family_expires_at"], now):
                raise RefreshRefused("expired")
            # Compare-and-set: of two concurrent uses of one token only one rotates it.
            result = await session.execute(
                update(refresh_tokens)
                .where(refresh_tokens.c.token_hash == hashed, refresh_tokens.c.rotated_at.is_(None))
                .values(rotated_at=now)
            )
            if affected_rows(result) != 1:
                await session.execute(
                    update(refresh_families)
                    .where(refresh_families.c.id == row["family_id"])
                    .values(revoked_at=now, revoked_reason="reuse")
                )
                await session.commit()
                raise RefreshRefused("reused")
            new = REFRESH_PREFIX + secrets.token_urlsafe(32)
            await session.execute(
                insert(refresh_tokens).values(
                    token_hash=digest(new),
                    family_id=row["family_id"],
                    created_at=now,
                    expires_at=row["family_expires_at"],
                )
            )
            await session.commit()
        return Grant(row["subject"], frozenset(row["roles"]), row["name"], row["family_id"], new)

    async def revoke(self, token: str, reason: str = "logout") -> bool:
        """Revoke the family of this refresh token (logout); False when the token is unknown."""
        async with self.db.session() as session:
            family = (
                await session.execute(
                    select(refresh_tokens.c.family_id).where(
                        refresh_tokens.c.token_hash == digest(token)
                    )
                )
            ).scalar_one_or_none()
            if family is None:
                return False
            await session.execute(
                update(refresh_families)
                .where(refresh_families.c.id == family, refresh_families.c.revoked_at.is_(None))
                .values(revoked_at=utcnow(), revoked_reason=reason)
            )
            await session.commit()
        return True


def _expired(expires_at: datetime, now: datetime) -> bool:
    if expires_at.tzinfo is None:  # SQLite through a JOIN may lose the type's zone handling
        expires_at = expires_at.replace(tzinfo=now.tzinfo)
    return expires_at <= now


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """An API key as listed (never its secret)."""

    id: uuid.UUID
    prefix: str
    name: str
    scopes: frozenset[str]
    created_by: uuid.UUID
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyStore:
    """API keys for business systems: `hk_<prefix>_<secret>`, stored as a SHA-256 digest."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self, *, name: str, scopes: frozenset[str], created_by: uuid.UUID
    ) -> tuple[ApiKeyRecord, str]:
        """A new key; the returned plaintext is shown once and never stored."""
        prefix = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        plaintext = f"{API_KEY_PREFIX}{prefix}_{secret}"
        record = ApiKeyRecord(uuid7(), prefix, name, scopes, created_by, utcnow(), None, None)
        async with self.db.session() as session:
            await session.execute(
                insert(api_keys).values(
                    id=record.id,
                    prefix=prefix,
                    secret_hash=digest(plaintext),
                    name=name,
                    scopes=sorted(scopes),
                    created_by=created_by,
                    created_at=record.created_at,
                )
            )
            await session.commit()
        return record, plaintext

    async def list(
        self, *, limit: int, after: uuid.UUID | None = None
    ) -> builtins.list[ApiKeyRecord]:
        """Up to `limit` keys newest first, from after the key `after` (a page and one more)."""
        # Ids are UUIDv7, time-ordered and unique: id order is creation order and a stable
        # one-column cursor (created_at alone could tie).
        query = select(api_keys).order_by(api_keys.c.id.desc()).limit(limit)
        if after is not None:
            query = query.where(api_keys.c.id < after)
        async with self.db.session() as session:
            rows = (await session.execute(query)).mappings().all()
        return [_record(r) for r in rows]

    async def revoke(self, key_id: uuid.UUID) -> ApiKeyRecord | None:
        """Revoke a key (idempotent); None when it does not exist."""
        async with self.db.session() as session:
            await session.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            row = (
                (await session.execute(select(api_keys).where(api_keys.c.id == key_id)))
                .mappings()
                .first()
            )
            await session.commit()
        return _record(row) if row else None

    async def authenticate(self, plaintext: str) -> ApiKeyRecord | None:
        """The live key for this plaintext, or None (unknown, malformed or revoked)."""
        body = plaintext.removeprefix(API_KEY_PREFIX)
        prefix, sep, _ = body.partition("_")
        if not plaintext.startswith(API_KEY_PREFIX) or not sep or len(prefix) != 12:
            return None
        async with self.db.session() as session:
            row = (
                (await session.execute(select(api_keys).where(api_keys.c.prefix == prefix)))
                .mappings()
                .first()
            )
        if row is None or not hmac.compare_digest(row["secret_hash"], digest(plaintext)):
            return None
        if row["revoked_at"] is not None:
            return None
        return _record(row)

    async def touch(self, key_id: uuid.UUID, when: datetime) -> None:
        """Record the last use (called at most once a minute per key)."""
        async with self.db.session() as session:
            await session.execute(
                update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=when)
            )
            await session.commit()


def _record(row: Any) -> ApiKeyRecord:
    r = row  # a RowMapping
    return ApiKeyRecord(
        r["id"],
        r["prefix"],
        r["name"],
        frozenset(r["scopes"]),
        r["created_by"],  # type: ignore[index]
        r["created_at"],
        r["revoked_at"],
        r["last_used_at"],  # type: ignore[index]
    )
