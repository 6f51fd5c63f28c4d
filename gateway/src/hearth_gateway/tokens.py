"""Access tokens: Ed25519 keys, RFC 7638 key ids, issuing, JWKS and strict verification."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm

ALGORITHMS = ["EdDSA"]  # the only accepted algorithm: no "none", no HS*, no RSA/EC confusion
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub"]
_CACHE_MAX = 10_000


class InvalidToken(Exception):
    """The bearer token is missing, malformed, expired, or not ours."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def load_private_key(path: Path | None) -> Ed25519PrivateKey:
    """An Ed25519 private key from a PEM file, or a fresh in-memory one when path is None."""
    if path is None:
        return Ed25519PrivateKey.generate()
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def load_verification_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key in a PEM file holding either the private or the public key."""
    data = path.read_bytes()
    if b"PRIVATE KEY" in data:
        return load_private_key(path).public_key()
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 key")
    return key


def private_pem(key: Ed25519PrivateKey) -> str:
    """The private key as unencrypted PKCS#8 PEM text."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_pem(key: Ed25519PublicKey) -> str:
    """The public key as SubjectPublicKeyInfo PEM text."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def public_jwk(key: Ed25519PublicKey) -> dict[str, str]:
    """The public key as an OKP JWK whose kid is its RFC 7638 thumbprint."""
    x = _b64url(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"))
    kid = _b64url(hashlib.sha256(canonical.encode()).digest())
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "use": "sig", "alg": "EdDSA"}


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """The claims the gateway uses from a verified access token."""

    subject: uuid.UUID
    roles: frozenset[str]
    name: str | None
    expires_at: int


class TokenIssuer:
    """Signs access tokens with the gateway's token key."""

    def __init__(
        self,
        key: Ed25519PrivateKey,
        *,
        issuer: str,
        audience: str,
        ttl: int,
        previous: list[Ed25519PublicKey] | None = None,
    ) -> None:
        self._key = key
        self.jwk = public_jwk(key.public_key())
        self.kid = self.jwk["kid"]
        # Rotation: previous keys are published (and verify) but never sign.
        self.previous_jwks = [public_jwk(k) for k in previous or []]
        self._issuer = issuer
        self._audience = audience
        self.ttl = ttl

    def issue(self, *, subject: uuid.UUID, roles: frozenset[str], name: str | None) -> str:
        """A signed EdDSA access token for this subject."""
        now = int(time.time())
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": str(subject),
            "iat": now,
            "exp": now + self.ttl,
            "jti": str(uuid.uuid4()),
            "roles": sorted(roles),
            "name": name,
        }
        return jwt.encode(claims, self._key, algorithm="EdDSA", headers={"kid": self.kid})

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The JSON Web Key Set clients and services may use to check our tokens."""
        return {"keys": [dict(self.jwk), *(dict(k) for k in self.previous_jwks)]}

    def verification_keys(self) -> dict[str, Ed25519PublicKey]:
        """kid -> public key for the active and every previous key."""
        keys = {self.kid: self._key.public_key()}
        for jwk in self.previous_jwks:
            key = OKPAlgorithm.from_jwk(jwk)
            assert isinstance(key, Ed25519PublicKey)
            keys[jwk["kid"]] = key
        return keys


class TokenVerifier:
    """Verifies access tokens against known keys by kid; never fetches keys named in a token."""

    def __init__(
        self, keys: dict[str, Ed25519PublicKey], *, issuer: str, audience: str, leeway: int
    ) -> None:
        self._keys = dict(keys)
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway
        # token -> verified claims; a hit still re-checks expiry. Exact-string keyed, so a
        # tampered token can never hit an entry made for the genuine one.
        self._cache: dict[str, VerifiedToken] = {}

    def verify(self, token: str) -> VerifiedToken:
        """The verified claims of an access token, or InvalidToken."""
        cached = self._cache.get(token)
        now = time.time()
        if cached is not None:
            if now <= cached.expires_at + self._leeway:
                return cached
            del self._cache[token]
            raise InvalidToken("token expired")
        verified = self._verify(token)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[token] = verified
        return verified

    def _verify(self, token: str) -> VerifiedToken:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed token") from exc
        if header.get("alg") not in ALGORITHMS:
            raise InvalidToken("algorithm not allowed")
        key = self._keys.get(header.get("kid"))  # type: ignore[arg-type]
        if key is None:
            raise InvalidToken("unknown key id")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": REQUIRED_CLAIMS, "verify_signature": True},
            )
            roles = claims.get("roles", [])
            if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
                raise InvalidToken("roles claim must be a list of strings")
            name = claims.get("name")
            return VerifiedToken(
                subject=uuid.UUID(claims["sub"]),
                roles=frozenset(roles),
                name=name if isinstance(name, str) else None,
                expires_at=int(claims["exp"]),
            )
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
            raise InvalidToken(str(exc)) from exc
