"""The gateway's signed identity assertion: signing (gateway only) and verification (services).

The assertion is a compact EdDSA (Ed25519) JWT in the `X-Hearth-Identity` header. It is
asymmetric on purpose: services hold only the public key, so a compromised service cannot mint
identities for the others (least privilege).
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Annotated, Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi import Depends, Request
from pydantic import BaseModel, ConfigDict

from servicekit.problems import Problem, problem_response

ASSERTION_HEADER = "x-hearth-identity"
REQUEST_ID_HEADER = "x-request-id"
ASSERTION_ISSUER = "hearth-gateway"
ASSERTION_AUDIENCE = "hearth-services"
ASSERTION_TTL_SECONDS = 60
CLOCK_SKEW_SECONDS = 5

PlatformRole = Literal["admin", "operator", "member", "service"]


class Principal(BaseModel):
    """Who is calling: a user or a business system, with platform roles and scopes."""

    model_config = ConfigDict(frozen=True)

    subject: uuid.UUID
    kind: Literal["user", "service"] = "user"
    name: str | None = None
    roles: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
    request_id: str = ""

    def has_role(self, *roles: str) -> bool:
        """True when the principal holds any of the given platform roles."""
        return not self.roles.isdisjoint(roles)

    @property
    def is_staff(self) -> bool:
        """Platform admins and operators run communities across the platform."""
        return self.has_role("admin", "operator")


class InvalidAssertion(Exception):
    """The identity assertion is missing, malformed, expired or not signed by the gateway."""


def generate_keypair() -> tuple[str, str]:
    """A fresh Ed25519 key pair as (private PEM, public PEM)."""
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


class AssertionSigner:
    """Signs identity assertions; only the gateway holds the private key."""

    def __init__(self, private_key_pem: str, ttl_seconds: int = ASSERTION_TTL_SECONDS) -> None:
        key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the identity assertion key must be Ed25519")
        self._key = key
        self._kid = key_id(key.public_key())
        self._ttl = ttl_seconds

    def sign(self, principal: Principal) -> str:
        """A short-lived assertion carrying the principal and its request id."""
        now = int(time.time())
        claims = {
            "iss": ASSERTION_ISSUER,
            "aud": ASSERTION_AUDIENCE,
            "sub": str(principal.subject),
            "iat": now,
            "exp": now + self._ttl,
            "knd": principal.kind,
            "nam": principal.name,
            "rol": sorted(principal.roles),
            "scp": sorted(principal.scopes),
            "rid": principal.request_id,
        }
        return jwt.encode(claims, self._key, algorithm="EdDSA", headers={"kid": self._kid})


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short, stable id of a public key (SHA-256 of its raw bytes, hex, 16 characters)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


_PEM_BLOCK = re.compile(r"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.S)


class AssertionVerifier:
    """Verifies assertions with the gateway's public keys; nothing else is accepted.

    The PEM text may hold several public keys (the current one and the next or previous one),
    so the gateway's assertion key can rotate without a window of refused requests: publish
    the new public key to every service first, then switch the gateway, then drop the old key.
    """

    def __init__(self, public_key_pem: str) -> None:
        self._keys: dict[str, Ed25519PublicKey] = {}
        for block in _PEM_BLOCK.findall(public_key_pem) or [public_key_pem]:
            key = serialization.load_pem_public_key(block.encode())
            if not isinstance(key, Ed25519PublicKey):
                raise ValueError("the identity assertion key must be Ed25519")
            self._keys[key_id(key)] = key

    def verify(self, token: str) -> Principal:
        """The principal in a valid assertion, or InvalidAssertion."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self._keys.get(kid) if kid else None
            if key is None:
                # Only one key configured and no kid: the single key is the only candidate.
                if kid is None and len(self._keys) == 1:
                    key = next(iter(self._keys.values()))
                else:
                    raise InvalidAssertion("unknown assertion key")
            claims = jwt.decode(
                token,
                key,
                algorithms=["EdDSA"],
                audience=ASSERTION_AUDIENCE,
                issuer=ASSERTION_ISSUER,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
            return Principal(
                subject=uuid.UUID(claims["sub"]),
                kind=claims.get("knd", "user"),
                name=claims.get("nam"),
                roles=frozenset(claims.get("rol", ())),
                scopes=frozenset(claims.get("scp", ())),
                request_id=str(claims.get("rid", "")),
            )
        except (jwt.PyJWTError, ValueError, KeyError, TypeError) as exc:
            raise InvalidAssertion(str(exc)) from exc


Scope = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]
]


class IdentityMiddleware:
    """Default deny: every HTTP request but the probes must carry a valid assertion.

    A pure ASGI middleware (not a per-route dependency) so that no route can forget it.
    """

    def __init__(
        self,
        app: ASGIApp,
        verifier: AssertionVerifier | None,
        exempt_paths: frozenset[str] = frozenset({"/healthz", "/readyz", "/metrics"}),
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.exempt_paths = exempt_paths

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        token = None
        for name, value in scope.get("headers", ()):
            if name == b"x-hearth-identity":
                token = value.decode("latin-1")
                break
        if token is None or self.verifier is None:
            response = problem_response(
                Problem(401, "unauthenticated", "Not authenticated", "no identity assertion")
            )
            await response(scope, receive, send)
            return
        try:
            principal = self.verifier.verify(token)
        except InvalidAssertion:
            response = problem_response(
                Problem(401, "unauthenticated", "Not authenticated", "invalid identity assertion")
            )
            await response(scope, receive, send)
            return
        # A fresh dict, never the one we were handed: a server may give every request the same
        # lifespan state (asgi-lifespan does), and the principal would leak across requests.
        scope["state"] = {**scope.get("state", {}), "principal": principal}
        await self.app(scope, receive, send)


async def get_principal(request: Request) -> Principal:
    """The verified caller (set by IdentityMiddleware)."""
    principal = getattr(request.state, "principal", None)
    if principal is None:  # only reachable if a route is mounted outside the middleware
        raise Problem(401, "unauthenticated", "Not authenticated")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_roles(*roles: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that refuses callers without one of the platform roles."""

    async def dependency(principal: CurrentPrincipal) -> Principal:
        if not principal.has_role(*roles):
            raise Problem(403, "forbidden", "Forbidden", f"requires one of: {', '.join(roles)}")
        return principal

    return dependency


# Platform staff (admin or operator); the gateway has its own over its Identity type.
StaffDep = Annotated[Principal, Depends(require_roles("admin", "operator"))]
