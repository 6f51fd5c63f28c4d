"""Who is calling: built-in tokens, external OIDC tokens and API keys, behind one cache.

The proxy asks `cached()` first (a dict lookup; the hot path) and only on a miss awaits
`authenticate()`, which may fetch a JWKS, provision an external user in members, or read an
API key from the gateway database.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt

from hearth_gateway.accounts import AccountsClient, AccountsError
from hearth_gateway.oidc import ExternalVerifier
from hearth_gateway.store import API_KEY_PREFIX, ApiKeyStore
from hearth_gateway.tokens import InvalidToken, TokenVerifier
from servicekit.ids import utcnow

log = logging.getLogger(__name__)

_CACHE_MAX = 10_000
LAST_USED_EVERY_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Identity:
    """A verified caller, before the per-request Principal is built from it."""

    subject: uuid.UUID
    kind: str  # "user" | "service"
    name: str | None
    roles: frozenset[str]
    scopes: frozenset[str]
    valid_until: float  # wall-clock seconds; the cache entry dies then
    api_key_id: uuid.UUID | None = None
    rate_key: str = ""  # the per-principal rate-limit key, built once per credential

    def __post_init__(self) -> None:
        if not self.rate_key:
            object.__setattr__(self, "rate_key", f"p:{self.subject}")


class Authenticator:
    """Verifies a bearer credential of any accepted kind; caches the result."""

    def __init__(
        self,
        *,
        builtin: TokenVerifier,
        builtin_issuer: str,
        externals: list[ExternalVerifier],
        accounts: AccountsClient | None,
        api_keys: ApiKeyStore | None,
        api_key_cache_seconds: float,
        provision_cache_seconds: float,
        leeway: int,
    ) -> None:
        self._builtin = builtin
        self._builtin_issuer = builtin_issuer
        self._externals = {v.config.issuer: v for v in externals}
        self._accounts = accounts
        self._api_keys = api_keys
        self._api_key_ttl = api_key_cache_seconds
        self._provision_ttl = provision_cache_seconds
        self._leeway = leeway
        self._cache: dict[str, Identity] = {}
        self._provisioned: dict[tuple[str, str], tuple[uuid.UUID, float]] = {}
        self._touched: dict[uuid.UUID, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    @property
    def externals(self) -> dict[str, ExternalVerifier]:
        """External verifiers by issuer."""
        return self._externals

    async def start(self) -> None:
        """Open the session used for JWKS fetches."""
        self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())

    async def close(self) -> None:
        """Close the JWKS session and wait for pending last-used writes."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def cached(self, credential: str) -> Identity | None:
        """The cached identity for this exact credential, if still valid (no I/O)."""
        identity = self._cache.get(credential)
        if identity is None:
            return None
        if time.time() > identity.valid_until:
            del self._cache[credential]
            return None
        if identity.api_key_id is not None:
            self._note_use(identity.api_key_id)
        return identity

    async def authenticate(self, credential: str) -> Identity:
        """Verify a credential (JWT of a known issuer, or an `hk_` API key), or InvalidToken."""
        if credential.startswith(API_KEY_PREFIX):
            identity = await self._api_key(credential)
        else:
            identity = await self._token(credential)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[credential] = identity
        return identity

    def forget_api_key(self, key_id: uuid.UUID) -> None:
        """Drop cached identities of a revoked key (other replicas: within the cache TTL)."""
        for credential in [c for c, i in self._cache.items() if i.api_key_id == key_id]:
            self._cache.pop(credential, None)

    async def _token(self, token: str) -> Identity:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed token") from exc
        issuer = unverified.get("iss") if isinstance(unverified, dict) else None
        if issuer == self._builtin_issuer:
            verified = self._builtin.verify(token)
            return Identity(
                subject=verified.subject,
                kind="user",
                name=verified.name,
                roles=verified.roles,
                scopes=frozenset(),
                valid_until=verified.expires_at + self._leeway,
            )
        external = self._externals.get(issuer) if isinstance(issuer, str) else None
        if external is None or self._session is None:
            raise InvalidToken("unknown issuer")
        claims = await external.verify(token, header, self._session)
        subject = await self._provision(external, claims)
        return Identity(
            subject=subject,
            kind="user",
            name=claims.name,
            roles=claims.roles,
            scopes=frozenset(),
            valid_until=claims.expires_at + self._leeway,
        )

    async def _provision(self, external: ExternalVerifier, claims: Any) -> uuid.UUID:
        key = (external.config.name, claims.external_subject)
        hit = self._provisioned.get(key)
        now = time.monotonic()
        if hit is not None and now < hit[1]:
            return hit[0]
        if self._accounts is None:
            raise InvalidToken("no accounts service to provision external users")
        try:
            account = await self._accounts.provision(
                issuer=external.config.issuer,
                external_subject=claims.external_subject,
                email=claims.email,
                name=claims.name,
                roles=sorted(claims.roles),
            )
        except AccountsError as exc:
            # An unprovisionable user cannot be identified: refuse rather than guess a subject.
            log.warning("provisioning %s/%s failed: %s", *key, exc)
            raise InvalidToken("the user could not be provisioned") from exc
        if account.status != "active":
            raise InvalidToken("the account is not active")
        if len(self._provisioned) >= _CACHE_MAX:
            self._provisioned.clear()
        self._provisioned[key] = (account.subject, now + self._provision_ttl)
        return account.subject

    async def _api_key(self, plaintext: str) -> Identity:
        if self._api_keys is None:
            raise InvalidToken("API keys are not enabled")
        record = await self._api_keys.authenticate(plaintext)
        if record is None:
            raise InvalidToken("unknown or revoked API key")
        self._note_use(record.id)
        return Identity(
            subject=record.id,
            kind="service",
            name=record.name,
            roles=frozenset({"service"}),
            scopes=record.scopes,
            valid_until=time.time() + self._api_key_ttl,
            api_key_id=record.id,
        )

    def _note_use(self, key_id: uuid.UUID) -> None:
        # Last-used time is written at most once a minute per key and off the request path.
        now = time.monotonic()
        if now - self._touched.get(key_id, float("-inf")) < LAST_USED_EVERY_SECONDS:
            return
        self._touched[key_id] = now
        if self._api_keys is None:
            return
        task = asyncio.get_running_loop().create_task(self._touch(key_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _touch(self, key_id: uuid.UUID) -> None:
        assert self._api_keys is not None
        try:
            await self._api_keys.touch(key_id, utcnow())
        except Exception as exc:  # best effort: a lost last-used write must not fail requests
            log.warning("could not record API key use: %r", exc)
