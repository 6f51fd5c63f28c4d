"""External OIDC issuers against two real issuers (RSA/RS256 and P-256/ES256) served over HTTP
with their own keys: mapping, provisioning through members' accounts API (a real HTTP stub of
contract 2), JWKS refresh on unknown kid, and every token the gateway must refuse."""

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
from cryptography.hazmat.primitives.asymmetric import rsa

PROBLEM = "application/problem+json"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def whoami(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/api/members/whoami", headers=bearer(token))


async def test_users_of_two_issuers_are_provisioned_and_mapped(
    client: httpx.AsyncClient, idps, accounts
) -> None:
    alice = f"alice-{uuid.uuid4().hex[:6]}"
    bob = f"bob-{uuid.uuid4().hex[:6]}"
    a = await whoami(client, idps.a.mint(alice, groups=["hearth-operators", "other"]))
    b = await whoami(client, idps.b.mint(bob))
    assert a.status_code == 200 and b.status_code == 200, (a.text, b.text)
    pa, pb = a.json()["principal"], b.json()["principal"]
    assert pa["subject"] == accounts.provisioned[(idps.a.issuer, alice)]["subject"]
    assert pb["subject"] == accounts.provisioned[(idps.b.issuer, bob)]["subject"]
    assert sorted(pa["roles"]) == ["member", "operator"]  # group claim mapped to a role
    assert pb["roles"] == ["member"] and pa["kind"] == pb["kind"] == "user"
    calls = [c["provision"] for c in accounts.calls if "provision" in c]
    mine = [c for c in calls if c["external_subject"] in (alice, bob)]
    assert {(c["issuer"], c["email"]) for c in mine} == {
        (idps.a.issuer, f"{alice}@corp.example"), (idps.b.issuer, f"{bob}@partners.example")
    }  # fmt: skip
    # A second token of the same user: same subject, no second provisioning call (cached).
    again = await whoami(client, idps.a.mint(alice, jti="second"))
    assert again.json()["principal"]["subject"] == pa["subject"]
    calls = [c for c in accounts.calls if "provision" in c]
    assert sum(c["provision"]["external_subject"] == alice for c in calls) == 1


async def test_unknown_kid_refreshes_the_jwks(make_gateway, idps) -> None:
    async with make_gateway(jwks_min_refresh_seconds=0) as (_, http):
        assert (await whoami(http, idps.b.mint("carol"))).status_code == 200
        hits = idps.b.jwks_hits
        new_kid = idps.b.rotate()  # the IdP rotates: tokens now carry a kid we never saw
        response = await whoami(http, idps.b.mint("carol", kid=new_kid))
        assert response.status_code == 200, response.text
        assert idps.b.jwks_hits == hits + 1


async def test_unknown_kid_refresh_is_rate_limited(make_gateway, idps) -> None:
    async with make_gateway(jwks_min_refresh_seconds=3600) as (_, http):
        assert (await whoami(http, idps.a.mint("dave"))).status_code == 200
        hits = idps.a.jwks_hits
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        for n in range(5):  # random kids must not make the gateway hammer the IdP
            token = idps.a.mint("dave", kid=f"random-{n}", key=other)
            assert (await whoami(http, token)).status_code == 401
        assert idps.a.jwks_hits == hits


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _bad_external_tokens(idps) -> dict[str, str]:
    a, b = idps.a, idps.b
    kid, key = a.keys[0]
    good = a.mint("mallory")
    head, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{payload}"
    mac = hmac.new(public, signing_input.encode(), "sha256").digest()
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    return {
        "expired": a.mint("mallory", iat=now - 4000, exp=now - 3600),
        "wrong audience": a.mint("mallory", aud="someone-else"),
        "audience of the other issuer": a.mint("mallory", aud=b.audience),
        "unknown issuer": a.mint("mallory", iss="https://evil.example"),
        "issuer B's iss, signed by A": a.mint("mallory", iss=b.issuer),
        "missing exp": a.mint("mallory", exp=None),
        "missing sub": a.mint("mallory", sub=None),
        "alg none": f"{_b64({'alg': 'none', 'kid': kid})}.{payload}.",
        "HS256 keyed with the RSA public key": signing_input + "." + base64.urlsafe_b64encode(
            mac).rstrip(b"=").decode(),
        "tampered signature": f"{head}.{payload}.{signature[:-6]}AAAAAA",
        "tampered payload": f"{head}.{_b64({**claims, 'sub': 'root'})}.{signature}",
        "unknown kid": a.mint("mallory", kid="nope", key=attacker),
        "attacker key, known kid": a.mint("mallory", kid=kid, key=attacker),
        "algorithm not accepted for issuer (PS256 for RS256 issuer)": a.mint(
            "mallory", alg="PS256"
        ),
        "ES256 issuer given an RS256 token": b.mint("mallory", alg="RS256", key=attacker),
    }  # fmt: skip


CASES = [
    "expired", "wrong audience", "audience of the other issuer", "unknown issuer",
    "issuer B's iss, signed by A", "missing exp", "missing sub", "alg none",
    "HS256 keyed with the RSA public key", "tampered signature", "tampered payload",
    "unknown kid", "attacker key, known kid",
    "algorithm not accepted for issuer (PS256 for RS256 issuer)",
    "ES256 issuer given an RS256 token",
]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
async def test_bad_external_tokens_refused(client: httpx.AsyncClient, idps, echo, case) -> None:
    token = _bad_external_tokens(idps)[case]
    before = len(echo.received)
    response = await whoami(client, token)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert len(echo.received) == before


KEY_URL_CASES = [
    ("jku", "attacker"), ("x5u", "attacker"), ("jwk", "attacker"), ("x5c", "attacker"),
    ("all", "attacker"), ("all", "issuer's"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "kid"), KEY_URL_CASES)
async def test_keys_named_by_a_token_are_never_fetched_or_used(
    client: httpx.AsyncClient, idps, echo, attacker, case: str, kid: str
) -> None:
    """Issuer A's `iss`, signed with the attacker's RSA key, which a real server serves at the
    token's `jku`/`x5u` (or the token embeds as `jwk`/`x5c`): refused, the server never asked;
    only issuer A's configured JWKS URL is ever read."""
    jwk = attacker.rsa_jwk()
    use_kid = jwk["kid"] if kid == "attacker" else idps.a.keys[0][0]
    extra = attacker.token_headers(case, jwk)
    token = idps.a.mint("mallory", kid=use_kid, key=attacker.rsa, headers=extra)
    assert jwt.get_unverified_header(token).keys() >= extra.keys()
    hits, before = len(attacker.hits), len(echo.received)
    response = await whoami(client, token)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert attacker.hits[hits:] == []
    assert len(echo.received) == before
    async with httpx.AsyncClient() as http:  # the server answers and counts
        assert (await http.get(extra.get("x5u") or f"{attacker.url}/jwks.json")).is_success
    assert len(attacker.hits) == hits + 1


CLAIM_CASES = [
    "missing iat", "missing iss", "missing aud",
    "expired within the leeway", "expired beyond the leeway",
    "iat ahead within the leeway", "iat ahead beyond the leeway",
    "nbf ahead within the leeway", "nbf ahead beyond the leeway",
]  # fmt: skip


@pytest.mark.parametrize("case", CLAIM_CASES)
async def test_required_claims_and_the_clock_skew_boundary(
    client: httpx.AsyncClient, idps, gateway_settings, case: str
) -> None:
    leeway = gateway_settings.token_leeway_seconds
    assert leeway >= 10
    now = int(time.time())
    inside, outside = leeway - 5, leeway + 5
    cases: dict[str, tuple[dict[str, Any], int]] = {
        "missing iat": ({"iat": None}, 401),
        "missing iss": ({"iss": None}, 401),
        "missing aud": ({"aud": None}, 401),
        "expired within the leeway": ({"iat": now - 600, "exp": now - inside}, 200),
        "expired beyond the leeway": ({"iat": now - 600, "exp": now - outside}, 401),
        "iat ahead within the leeway": ({"iat": now + inside}, 200),
        "iat ahead beyond the leeway": ({"iat": now + outside}, 401),
        "nbf ahead within the leeway": ({"nbf": now + inside}, 200),
        "nbf ahead beyond the leeway": ({"nbf": now + outside}, 401),
    }
    claims, expected = cases[case]
    response = await whoami(client, idps.a.mint(f"clock-{uuid.uuid4().hex[:6]}", **claims))
    assert response.status_code == expected, response.text


async def test_provisioning_failure_refuses(make_gateway, idps, dead_url: str) -> None:
    async with make_gateway(accounts_url=dead_url) as (_, http):
        assert (await whoami(http, idps.a.mint("erin"))).status_code == 401


def test_symmetric_algorithms_cannot_be_configured(idps) -> None:
    for algorithms in (["HS256"], ["none"], []):
        with pytest.raises(ValueError):
            idps.a.config(algorithms=algorithms)


def test_jwt_library_refuses_hs_with_asymmetric_key(idps) -> None:
    """Belt and braces: even if HS256 were allowed, PyJWT refuses a PEM key as an HMAC secret."""
    key = idps.a.keys[0][1].public_key()
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(jwt.InvalidKeyError):
        jwt.encode({"a": 1}, pem, algorithm="HS256")
