"""External OIDC issuers: per-issuer JWKS (cached, refreshed on unknown kid), strict checks.

Keys come only from the JWKS URL configured for the issuer; `jku`, `x5u`, `jwk` and `x5c`
header parameters in a token are ignored, so a token can never choose the key that checks it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt
from pydantic import BaseModel, Field, field_validator

from hearth_gateway.tokens import REQUIRED_CLAIMS, InvalidToken

log = logging.getLogger(__name__)

ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


class ExternalIssuer(BaseModel):
    """One trusted identity provider and how its claims map onto Hearth."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")
    issuer: str  # the exact `iss` value
    jwks_url: str
    audience: str
    algorithms: list[str] = Field(default_factory=lambda: ["RS256"])
    subject_claim: str = "sub"
    email_claim: str = "email"
    name_claim: str = "name"
    groups_claim: str = "groups"
    group_roles: dict[str, str] = Field(default_factory=dict)  # IdP group -> platform role
    default_roles: list[str] = Field(default_factory=lambda: ["member"])

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        bad = [a for a in value if a not in ASYMMETRIC]
        if bad or not value:
            raise ValueError(f"only asymmetric algorithms may be accepted, not {bad or value}")
        return value

    @field_validator("jwks_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("jwks_url must be an http(s) URL")
        return value

    @field_validator("group_roles")
    @classmethod
    def _platform_roles(cls, value: dict[str, str]) -> dict[str, str]:
        allowed = {"admin", "operator", "member"}
        if not set(value.values()) <= allowed:
            raise ValueError(f"group_roles may only map to {sorted(allowed)}")
        return value


class JwksCache:
    """The issuer's keys by kid; refetched after `ttl`, or on an unknown kid at most every
    `min_refresh` seconds (an attacker sending random kids cannot make us hammer the IdP)."""

    def __init__(self, url: str, *, ttl: float, min_refresh: float, timeout: float = 5.0) -> None:
        self.url = url
        self._ttl = ttl
        self._min_refresh = min_refresh
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def key(self, kid: str, session: aiohttp.ClientSession) -> jwt.PyJWK | None:
        """The key with this kid, refreshing the set when allowed."""
        now = time.monotonic()
        key = self._keys.get(kid)
        if key is not None and now - self._fetched_at < self._ttl:
            return key
        async with self._lock:
            key = self._keys.get(kid)
            fresh = time.monotonic() - self._fetched_at
            if key is not None and fresh < self._ttl:
                return key  # another task refreshed while we waited
            if fresh >= self._min_refresh:
                await self._refresh(session)
        return self._keys.get(kid)

    async def _refresh(self, session: aiohttp.ClientSession) -> None:
        self._fetched_at = time.monotonic()  # also on failure: rate-limits retries
        self.fetches += 1
        try:
            async with session.get(self.url, timeout=self._timeout) as resp:
                if resp.status != 200:
                    raise ValueError(f"JWKS answered {resp.status}")
                document = json.loads(await resp.read())
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning(
                "JWKS fetch from %s failed: %r (keeping %d keys)", self.url, exc, len(self._keys)
            )
            return
        keys: dict[str, jwt.PyJWK] = {}
        for data in document.get("keys", []) if isinstance(document, dict) else []:
            if not isinstance(data, dict) or data.get("use", "sig") != "sig" or "kid" not in data:
                continue
            try:
                keys[str(data["kid"])] = jwt.PyJWK(data)
            except jwt.PyJWTError:
                continue  # an algorithm we do not support; skip that key only
        self._keys = keys


@dataclass(frozen=True, slots=True)
class ExternalClaims:
    """What the gateway takes from a verified external token."""

    issuer: ExternalIssuer
    external_subject: str
    email: str | None
    name: str | None
    roles: frozenset[str]
    expires_at: int


class ExternalVerifier:
    """Verifies tokens of one external issuer."""

    def __init__(
        self, config: ExternalIssuer, *, leeway: int, jwks_ttl: float, jwks_min_refresh: float
    ) -> None:
        self.config = config
        self._leeway = leeway
        self.jwks = JwksCache(config.jwks_url, ttl=jwks_ttl, min_refresh=jwks_min_refresh)

    async def verify(
        self, token: str, header: dict[str, Any], session: aiohttp.ClientSession
    ) -> ExternalClaims:
        """The mapped claims of a valid token, or InvalidToken."""
        alg = header.get("alg")
        if alg not in self.config.algorithms:
            raise InvalidToken("algorithm not allowed for this issuer")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise InvalidToken("a kid is required")
        key = await self.jwks.key(kid, session)
        if key is None:
            raise InvalidToken("unknown key id")
        pinned = getattr(key, "_jwk_data", {}).get("alg")
        if pinned and pinned != alg:  # a JWK that names its algorithm allows only that one
            raise InvalidToken("algorithm does not match the key")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=self.config.audience,
                issuer=self.config.issuer,
                leeway=self._leeway,
                options={"require": REQUIRED_CLAIMS, "verify_signature": True},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        subject = claims.get(self.config.subject_claim)
        if not isinstance(subject, str) or not subject or len(subject) > 255:
            raise InvalidToken("missing subject claim")
        groups = claims.get(self.config.groups_claim) or []
        if isinstance(groups, str):
            groups = [groups]
        roles = set(self.config.default_roles)
        for group in groups if isinstance(groups, list) else []:
            role = self.config.group_roles.get(str(group))
            if role:
                roles.add(role)
        email, name = claims.get(self.config.email_claim), claims.get(self.config.name_claim)
        return ExternalClaims(
            issuer=self.config,
            external_subject=subject,
            email=email if isinstance(email, str) else None,
            name=name if isinstance(name, str) else None,
            roles=frozenset(roles),
            expires_at=int(claims["exp"]),
        )
