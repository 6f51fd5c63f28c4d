"""Every forged, broken or misplaced bearer token the gateway must refuse, in one table.

Each case is a token an attacker can make from what is public (the JWKS, a token of their own,
an old token) or a token placed where the gateway must not look for it. Each one must get a
401 `application/problem+json` with a `WWW-Authenticate: Bearer` challenge, and must never
reach the upstream. The control at the end shows the same request with a genuine token passes,
so the refusals come from the token alone. (The `jku`/`x5u`/`jwk`/`x5c` cases against a live
attacker server that counts fetches, and the clock-skew boundaries, are in
test_gateway_proxy.py; external issuers' tokens in test_gateway_oidc.py.)
"""

from __future__ import annotations

import base64
import hmac
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hearth_gateway.dev_accounts import DEV_ACCOUNTS
from hearth_gateway.tokens import public_jwk
from servicekit.identity import AssertionSigner, Principal

PROBLEM = "application/problem+json"
MEMBER = DEV_ACCOUNTS["member"]
PATH = "/api/members/communities"


def _b64(data: bytes | dict[str, Any]) -> str:
    raw = json.dumps(data).encode() if isinstance(data, dict) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": "hearth", "aud": "hearth-api", "sub": str(MEMBER.subject), "iat": now,
        "exp": now + 300, "roles": ["admin"], "name": "forged",
    }  # fmt: skip
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _signed(
    key: Any, alg: str = "EdDSA", headers: dict[str, Any] | None = None, **claims: Any
) -> str:
    return jwt.encode(_claims(**claims), key, algorithm=alg, headers=headers)


def _hmac(header: dict[str, Any], claims: dict[str, Any], secret: bytes, digest: str) -> str:
    signing_input = f"{_b64(header)}.{_b64(claims)}"
    mac = hmac.new(secret, signing_input.encode(), digest).digest()
    return f"{signing_input}.{_b64(mac)}"


def _cases(keys: Any) -> dict[str, dict[str, Any]]:
    """case → how it is sent: `token` as a bearer header, or `query`/`cookie` placements."""
    key = keys.token_key
    jwk = public_jwk(key.public_key())
    kid = jwk["kid"]
    ours = {"kid": kid}
    good = _signed(key, headers=ours)
    head, payload, signature = good.split(".")
    flipped = signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    raw_public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    claims = _claims()
    stranger = Ed25519PrivateKey.generate()
    assertion_key = serialization.load_pem_private_key(
        keys.assertion_file.read_bytes(), password=None
    )
    now = int(time.time())
    cases: dict[str, str] = {
        # The algorithm: none in every spelling, none with a signature, no alg at all.
        **{
            f"alg {alg}": f"{_b64({'alg': alg, 'typ': 'JWT', 'kid': kid})}.{_b64(claims)}."
            for alg in ("none", "None", "NONE", "nOnE")
        },
        "alg none with a signature": f"{_b64({'alg': 'none', 'kid': kid})}.{payload}.{signature}",
        "no alg": f"{_b64({'typ': 'JWT', 'kid': kid})}.{payload}.{signature}",
        # Key confusion: an HMAC keyed with the public key, as PEM, raw bytes or the JWK's x.
        **{
            f"{alg} keyed with the public {form}": _hmac(
                {"alg": alg, "typ": "JWT", "kid": kid}, claims, secret, digest
            )
            for alg, digest in (("HS256", "sha256"), ("HS384", "sha384"), ("HS512", "sha512"))
            for form, secret in (
                ("PEM", pem),
                ("raw key", raw_public),
                ("JWK x", jwk["x"].encode()),
            )
        },
        # Other asymmetric algorithms under our kid (an RS/ES key the attacker holds).
        "RS256 under our kid": _signed(
            rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256", ours
        ),
        "ES256 under our kid": _signed(ec.generate_private_key(ec.SECP256R1()), "ES256", ours),
        # The right algorithm, the wrong key.
        "a stranger's Ed25519 key under our kid": _signed(stranger, headers=ours),
        "the gateway's assertion key (not a token key)": _signed(assertion_key, headers=ours),
        "an identity assertion as a bearer token": AssertionSigner(
            assertion_key.private_bytes(  # type: ignore[union-attr]
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode()
        ).sign(Principal(subject=MEMBER.subject, roles=frozenset({"admin"}))),
        # kid: unknown, missing, or trying to be a path or a query.
        "unknown kid": _signed(stranger, headers={"kid": "not-a-known-kid"}),
        "no kid": _signed(key),
        "kid path traversal": _signed(key, headers={"kid": "../../../../dev/null"}),
        "kid injection": _signed(key, headers={"kid": f"{kid}' OR '1'='1"}),
        # Header parameters naming or embedding a key the attacker controls.
        "jku header": _signed(stranger, headers={"kid": kid, "jku": "https://evil.test/jwks"}),
        "x5u header": _signed(stranger, headers={"kid": kid, "x5u": "https://evil.test/c.pem"}),
        "jwk header": _signed(
            stranger, headers={"kid": kid, "jwk": public_jwk(stranger.public_key())}
        ),
        "unknown crit header": _signed(
            key, headers={"kid": kid, "crit": ["exp-ext"], "exp-ext": 1}
        ),
        # Claims.
        "wrong aud": _signed(key, headers=ours, aud="someone-else"),
        "aud list without ours": _signed(key, headers=ours, aud=["a", "b"]),
        "wrong iss": _signed(key, headers=ours, iss="evil"),
        "expired": _signed(key, headers=ours, iat=now - 4000, exp=now - 3600),
        "not yet valid (nbf)": _signed(key, headers=ours, nbf=now + 3600),
        "issued in the future (iat)": _signed(key, headers=ours, iat=now + 3600),
        "missing sub": _signed(key, headers=ours, sub=None),
        "empty sub": _signed(key, headers=ours, sub=""),
        "non-uuid sub": _signed(key, headers=ours, sub="root"),
        "missing exp": _signed(key, headers=ours, exp=None),
        "exp as a string": _signed(key, headers=ours, exp="never"),
        "roles not a list": _signed(key, headers=ours, roles="admin"),
        # The signature and the encoding.
        "tampered signature": f"{head}.{payload}.{flipped}",
        "tampered payload": f"{head}.{_b64({**claims, 'roles': ['operator']})}.{signature}",
        "empty signature": f"{head}.{payload}.",
        "two segments": f"{head}.{payload}",
        "JSON serialization": json.dumps(
            {"payload": payload, "protected": head, "signature": signature}
        ),
        "garbage": "not.a.jwt",
    }
    out: dict[str, dict[str, Any]] = {c: {"headers": _bearer(t)} for c, t in cases.items()}
    # A genuine token in a place the gateway does not read credentials from: refused (401,
    # as if absent), so tokens never land in access logs, caches or Referer headers.
    real = _signed(key, headers=ours, roles=["member"])
    out["token in the query string (access_token)"] = {"params": {"access_token": real}}
    out["token in the query string (token)"] = {"params": {"token": real}}
    out["token in a cookie"] = {"headers": {"cookie": f"access_token={real}"}}
    out["token in a custom header"] = {"headers": {"x-access-token": real}}
    out["token without the Bearer scheme"] = {"headers": {"authorization": real}}
    return out


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


CASES = [
    "alg none", "alg None", "alg NONE", "alg nOnE", "alg none with a signature", "no alg",
    *(
        f"{alg} keyed with the public {form}"
        for alg in ("HS256", "HS384", "HS512")
        for form in ("PEM", "raw key", "JWK x")
    ),
    "RS256 under our kid", "ES256 under our kid", "a stranger's Ed25519 key under our kid",
    "the gateway's assertion key (not a token key)", "an identity assertion as a bearer token",
    "unknown kid", "no kid", "kid path traversal", "kid injection",
    "jku header", "x5u header", "jwk header", "unknown crit header",
    "wrong aud", "aud list without ours", "wrong iss", "expired", "not yet valid (nbf)",
    "issued in the future (iat)", "missing sub", "empty sub", "non-uuid sub", "missing exp",
    "exp as a string", "roles not a list",
    "tampered signature", "tampered payload", "empty signature", "two segments",
    "JSON serialization", "garbage",
    "token in the query string (access_token)", "token in the query string (token)",
    "token in a cookie", "token in a custom header", "token without the Bearer scheme",
]  # fmt: skip


def test_the_table_lists_every_case(keys: Any) -> None:
    assert sorted(CASES) == sorted(_cases(keys)), set(CASES) ^ set(_cases(keys))


@pytest.mark.parametrize("case", CASES)
async def test_forged_and_misplaced_tokens_get_401_problems(
    client: httpx.AsyncClient, echo: Any, keys: Any, case: str
) -> None:
    sent = _cases(keys)[case]
    before = len(echo.received)
    r = await client.get(PATH, headers=sent.get("headers"), params=sent.get("params"))
    assert r.status_code == 401, (case, r.status_code, r.text)
    assert r.headers["content-type"].startswith(PROBLEM), (case, r.headers)
    body = r.json()
    assert body["status"] == 401 and body["type"] == "urn:hearth:problem:unauthenticated", body
    assert r.headers["www-authenticate"].startswith("Bearer"), r.headers
    assert len(echo.received) == before, f"{case}: reached the upstream"


@pytest.mark.parametrize("case", ["alg none", "HS256 keyed with the public PEM", "missing sub"])
async def test_forged_tokens_are_refused_on_the_gateways_own_routes(
    client: httpx.AsyncClient, keys: Any, case: str
) -> None:
    """The gateway's admin routes check tokens themselves (not through the proxy): same answer."""
    r = await client.get("/auth/api-keys", headers=_cases(keys)[case]["headers"])
    assert r.status_code == 401 and r.headers["content-type"].startswith(PROBLEM), r.text


async def test_the_control_a_genuine_token_passes(
    client: httpx.AsyncClient, echo: Any, keys: Any
) -> None:
    key = keys.token_key
    token = _signed(key, headers={"kid": public_jwk(key.public_key())["kid"]}, roles=["member"])
    before = len(echo.received)
    r = await client.get(PATH, headers=_bearer(token))
    assert r.status_code == 200, r.text
    assert len(echo.received) == before + 1
    # And the upstream saw who the token named, nothing from the query string.
    assert r.json()["principal"]["subject"] == str(MEMBER.subject), r.json()
    assert uuid.UUID(r.json()["principal"]["subject"])
