"""The /api proxy against a real echo upstream: auth, header hygiene, limits, paths, failures."""

from __future__ import annotations

import base64
import hmac
import json
import time
import uuid

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hearth_gateway.dev_accounts import DEV_ACCOUNTS
from hearth_gateway.tokens import public_jwk
from servicekit.identity import ASSERTION_HEADER, AssertionSigner, Principal, generate_keypair

PROBLEM = "application/problem+json"
MEMBER = DEV_ACCOUNTS["member"]


def assert_problem(status: int, headers, body: bytes | dict, expected: int) -> dict:
    assert status == expected, body
    assert headers["content-type"].startswith(PROBLEM)
    doc = body if isinstance(body, dict) else json.loads(body)
    assert doc["status"] == expected and doc["type"].startswith("urn:hearth:problem:")
    return doc


def header_values(record: dict, name: str) -> list[str]:
    return [v for k, v in record["headers"] if k == name]


async def stream_of(*chunks: bytes):
    for chunk in chunks:
        yield chunk


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_proxies_with_principal_and_copies_the_response(
    client: httpx.AsyncClient, echo, member_token: str
) -> None:
    before = len(echo.received)
    response = await client.get(
        "/api/members/communities/7?limit=5&q=a%20b", headers=bearer(member_token)
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-upstream"] == "echo"
    record = response.json()
    assert echo.received[before:] == [record]
    assert record["path"] == "/members-svc/communities/7"
    assert record["query"] == "limit=5&q=a%20b"
    principal = record["principal"]
    assert principal["subject"] == str(MEMBER.subject)
    assert principal["roles"] == ["member"] and principal["kind"] == "user"
    assert principal["name"] == MEMBER.name
    assert principal["request_id"] == response.headers["x-request-id"]
    assert header_values(record, "authorization") == []  # the bearer token stays at the edge


async def test_forwards_method_body_and_upstream_status(
    client: httpx.AsyncClient, member_token: str
) -> None:
    payload = {"title": "Weekly news", "tags": ["a", "b"]}
    response = await client.post(
        "/api/content/posts/teapot", json=payload, headers=bearer(member_token)
    )
    assert response.status_code == 418
    record = response.json()
    assert record["method"] == "POST" and record["path"] == "/content-svc/posts/teapot"
    assert json.loads(record["body"]) == payload
    assert header_values(record, "content-type") == ["application/json"]
    for method in ("PUT", "PATCH", "DELETE"):
        response = await client.request(method, "/api/content/x", headers=bearer(member_token))
        assert response.status_code == 200 and response.json()["method"] == method


def _token(issuer_key: Ed25519PrivateKey, **overrides) -> str:
    now = int(time.time())
    claims = {
        "iss": "hearth", "aud": "hearth-api", "sub": str(MEMBER.subject), "iat": now,
        "exp": now + 300, "roles": ["admin"], "name": "forged",
    }  # fmt: skip
    headers = {"kid": public_jwk(issuer_key.public_key())["kid"]}
    headers.update(overrides.pop("_headers", {}))
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, issuer_key, algorithm="EdDSA", headers=headers)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _hs256(header: dict, claims: dict, secret: bytes) -> str:
    signing_input = f"{_b64(header)}.{_b64(claims)}"
    mac = hmac.new(secret, signing_input.encode(), "sha256").digest()
    return signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def _bad_tokens(keys) -> dict[str, str | None]:
    key = keys.token_key
    kid = public_jwk(key.public_key())["kid"]
    good = _token(key)
    head, payload, signature = good.split(".")
    flipped = signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")
    public_bytes = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    other = Ed25519PrivateKey.generate()
    return {
        "no token": None,
        "expired": _token(key, iat=int(time.time()) - 4000, exp=int(time.time()) - 3600),
        "wrong audience": _token(key, aud="someone-else"),
        "wrong issuer": _token(key, iss="evil"),
        "missing exp": _token(key, exp=None),
        "non-uuid subject": _token(key, sub="root"),
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{_b64(claims)}.",
        # Key confusion: HMAC "signed" with the public key bytes an attacker can download.
        "hs256 with public key": _hs256(
            {"alg": "HS256", "typ": "JWT", "kid": kid}, claims, public_bytes
        ),
        "tampered signature": f"{head}.{payload}.{flipped}",
        "tampered payload": f"{head}.{_b64({**claims, 'roles': ['operator']})}.{signature}",
        "unknown kid": _token(other, _headers={"kid": "not-a-known-kid"}),
        "other key same kid": _token(other, _headers={"kid": kid}),
        "garbage": "not.a.jwt",
    }


BAD_TOKEN_CASES = [
    "no token", "expired", "wrong audience", "wrong issuer", "missing exp", "non-uuid subject",
    "alg none", "hs256 with public key", "tampered signature", "tampered payload", "unknown kid",
    "other key same kid", "garbage",
]  # fmt: skip


@pytest.mark.parametrize("case", BAD_TOKEN_CASES)
async def test_bad_tokens_are_refused_before_the_upstream(
    client: httpx.AsyncClient, echo, keys, case: str
) -> None:
    token = _bad_tokens(keys)[case]
    before = len(echo.received)
    headers = bearer(token) if token is not None else {}
    response = await client.get("/api/members/communities", headers=headers)
    assert_problem(response.status_code, response.headers, response.json(), 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert len(echo.received) == before


# (header parameter naming a key, whose kid the token carries)
KEY_URL_CASES = [
    ("jku", "attacker"), ("x5u", "attacker"), ("jwk", "attacker"), ("x5c", "attacker"),
    ("all", "attacker"), ("all", "ours"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "kid"), KEY_URL_CASES)
async def test_keys_named_by_a_token_are_never_fetched_or_used(
    client: httpx.AsyncClient, echo, keys, attacker, case: str, kid: str
) -> None:
    """A token signed with the attacker's key, pointing (`jku`, `x5u`) at a real server that
    serves that key, or embedding it (`jwk`, `x5c`): refused, and the server never asked."""
    jwk = attacker.okp_jwk()
    use_kid = jwk["kid"] if kid == "attacker" else public_jwk(keys.token_key.public_key())["kid"]
    headers = {"kid": use_kid, **attacker.token_headers(case, jwk)}
    token = _token(attacker.ed25519, _headers=headers)
    assert jwt.get_unverified_header(token).keys() >= headers.keys()
    hits, before = len(attacker.hits), len(echo.received)
    response = await client.get("/api/members/communities", headers=bearer(token))
    assert_problem(response.status_code, response.headers, response.json(), 401)
    assert attacker.hits[hits:] == []  # never fetched
    assert len(echo.received) == before
    # The server does answer and count: zero above is the gateway's doing, not a dead port.
    async with httpx.AsyncClient() as http:
        assert (await http.get(headers.get("jku") or f"{attacker.url}/jwks.json")).is_success
    assert len(attacker.hits) == hits + 1


CLAIM_CASES = [
    "missing iat", "missing iss", "missing aud",
    "expired within the leeway", "expired beyond the leeway",
    "iat ahead within the leeway", "iat ahead beyond the leeway",
    "nbf ahead within the leeway", "nbf ahead beyond the leeway",
]  # fmt: skip


def claim_case(case: str, leeway: int) -> tuple[dict[str, int | None], int]:
    """Claim overrides for a case and the status the gateway must answer; clock cases sit 5 s
    either side of the leeway."""
    assert leeway >= 10
    now = int(time.time())
    inside, outside = leeway - 5, leeway + 5
    cases: dict[str, tuple[dict[str, int | None], int]] = {
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
    return cases[case]


@pytest.mark.parametrize("case", CLAIM_CASES)
async def test_required_claims_and_the_clock_skew_boundary(
    client: httpx.AsyncClient, echo, keys, gateway_settings, case: str
) -> None:
    claims, expected = claim_case(case, gateway_settings.token_leeway_seconds)
    token = _token(keys.token_key, **claims)
    before = len(echo.received)
    response = await client.get("/api/members/communities", headers=bearer(token))
    assert response.status_code == expected, response.text
    assert len(echo.received) == before + (expected == 200)


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer  x y", "Token abc"])
async def test_malformed_authorization_header(client: httpx.AsyncClient, echo, value: str) -> None:
    before = len(echo.received)
    response = await client.get("/api/members/x", headers={"Authorization": value})
    assert_problem(response.status_code, response.headers, response.json(), 401)
    assert len(echo.received) == before


async def test_spoofed_identity_headers_are_stripped(
    client: httpx.AsyncClient, echo, member_token: str
) -> None:
    # A well-formed assertion for "admin", signed with a key that is not the gateway's.
    forged = AssertionSigner(generate_keypair()[0]).sign(
        Principal(subject=DEV_ACCOUNTS["admin"].subject, roles=frozenset({"admin"}))
    )
    spoof = {
        "X-Hearth-Identity": forged,
        "X-Hearth-Anything": "1",
        "X-Forwarded-User": "admin",
        "X-Forwarded-For": "10.9.9.9",
        "X-Remote-User": "admin",
        "X-Auth-Request-User": "admin",
        "Remote-User": "admin",
    }
    response = await client.get("/api/members/me", headers={**spoof, **bearer(member_token)})
    assert response.status_code == 200, response.text
    record = response.json()
    names = [k for k, _ in record["headers"]]
    assert header_values(record, ASSERTION_HEADER) != [forged]
    assert len(header_values(record, ASSERTION_HEADER)) == 1
    assert not any(n.startswith("x-hearth-") and n != ASSERTION_HEADER for n in names)
    for name in ("x-forwarded-user", "x-remote-user", "x-auth-request-user", "remote-user"):
        assert name not in names
    assert header_values(record, "x-forwarded-for") == ["127.0.0.1"]
    assert record["principal"]["subject"] == str(MEMBER.subject)
    assert record["principal"]["roles"] == ["member"]

    # Without a token the spoofed assertion gets nowhere.
    before = len(echo.received)
    response = await client.get("/api/members/me", headers=spoof)
    assert_problem(response.status_code, response.headers, response.json(), 401)
    assert len(echo.received) == before


async def test_hop_by_hop_headers_are_not_forwarded(raw, member_token: str) -> None:
    status, _, body = await raw(
        "GET", "/api/members/hop",
        headers={**bearer(member_token), "Keep-Alive": "timeout=5", "X-Secret-Hop": "1",
                 "Connection": "close, X-Secret-Hop", "TE": "trailers",
                 "Proxy-Authorization": "Basic eA=="},
    )  # fmt: skip
    assert status == 200
    names = {k for k, _ in json.loads(body)["headers"]}
    for name in ("keep-alive", "x-secret-hop", "te", "proxy-authorization"):
        assert name not in names
    assert "host" in names  # the upstream's own host, set by the transport


async def test_oversized_body_by_content_length(
    client: httpx.AsyncClient, echo, member_token: str, gateway_settings
) -> None:
    before = len(echo.received)
    too_big = b"x" * (gateway_settings.max_body_bytes + 1)
    response = await client.post(
        "/api/content/posts", content=too_big, headers=bearer(member_token)
    )
    assert_problem(response.status_code, response.headers, response.json(), 413)
    assert len(echo.received) == before
    exact = b"y" * gateway_settings.max_body_bytes
    response = await client.post("/api/content/posts", content=exact, headers=bearer(member_token))
    assert response.status_code == 200 and len(response.json()["body"]) == len(exact)


async def test_oversized_streamed_body(
    asgi_client: httpx.AsyncClient, raw, echo, member_token: str, gateway_settings
) -> None:
    sent = 0

    async def stream():  # no Content-Length: the limit must hold while reading the stream
        nonlocal sent
        for _ in range(gateway_settings.max_body_bytes // 8192 + 8):
            sent += 1
            yield b"z" * 8192

    before = len(echo.received)
    response = await asgi_client.post(
        "/api/content/posts", content=stream(), headers=bearer(member_token)
    )
    assert "content-length" not in response.request.headers
    assert_problem(response.status_code, response.headers, response.json(), 413)
    assert sent == gateway_settings.max_body_bytes // 8192 + 1  # refused as soon as it grew past
    assert len(echo.received) == before
    # Streamed bodies within the limit are relayed, in-process and over a real socket.
    response = await asgi_client.post(
        "/api/content/posts", content=stream_of(b"ab", b"cd"), headers=bearer(member_token)
    )
    assert response.status_code == 200 and response.json()["body"] == "abcd"
    status, _, body = await raw(
        "POST", "/api/content/posts", headers=bearer(member_token), chunks=[b"ab", b"cd"]
    )
    assert status == 200 and json.loads(body)["body"] == "abcd"


TRAVERSALS = [
    "/api/members/../content/x",
    "/api/members/%2e%2e/content/x",
    "/api/members/%2E%2E/content/x",
    "/api/members/.%2e/content/x",
    "/api/members/%252e%252e/content/x",
    "/api/members/a/../../content/x",
    "/api/members/./x",
    "/api/members/%2e/x",
    "/api/members/..",
    "/api/members/..;/content/x",
    "/api/members/a%2f..%2f..%2fcontent/x",
    "/api/members/a%2Fb",
    "/api/members/a%5c..%5ccontent",
    "/api/members/a\\..\\content",
    "/api/members//content/x",
    "/api/members/a%00b",
]


@pytest.mark.parametrize("target", TRAVERSALS)
async def test_path_traversal_is_refused(raw, echo, member_token: str, target: str) -> None:
    before = len(echo.received)
    status, headers, body = await raw("GET", target, headers=bearer(member_token))
    assert_problem(status, headers, body, 400)
    assert len(echo.received) == before, echo.received[before:]


async def test_dots_inside_names_are_fine(client: httpx.AsyncClient, member_token: str) -> None:
    response = await client.get(
        "/api/members/files/report.v2..final.pdf/", headers=bearer(member_token)
    )
    assert response.status_code == 200
    assert response.json()["path"] == "/members-svc/files/report.v2..final.pdf/"


async def test_unknown_context_404(client: httpx.AsyncClient, member_token: str) -> None:
    for path in ("/api/billing/x", "/api/Members/x", "/api/%6dembers/x"):
        response = await client.get(path, headers=bearer(member_token))
        assert_problem(response.status_code, response.headers, response.json(), 404)


async def test_upstream_down_502(client: httpx.AsyncClient, member_token: str) -> None:
    response = await client.get("/api/events/activities", headers=bearer(member_token))
    doc = assert_problem(response.status_code, response.headers, response.json(), 502)
    assert "events" in doc["detail"]


async def test_upstream_slow_504(client: httpx.AsyncClient, member_token: str) -> None:
    started = time.monotonic()
    response = await client.get("/api/members/slow", headers=bearer(member_token))
    assert_problem(response.status_code, response.headers, response.json(), 504)
    assert time.monotonic() - started < 2.5


async def test_request_id_propagated(client: httpx.AsyncClient, member_token: str) -> None:
    response = await client.get(
        "/api/members/x", headers={**bearer(member_token), "X-Request-ID": "abc-123.4"}
    )
    assert response.headers["x-request-id"] == "abc-123.4"
    record = response.json()
    assert header_values(record, "x-request-id") == ["abc-123.4"]
    assert record["principal"]["request_id"] == "abc-123.4"


@pytest.mark.parametrize("incoming", [None, "x" * 500, "has space", "semi;colon"])
async def test_request_id_generated_when_absent_or_unsafe(
    client: httpx.AsyncClient, member_token: str, incoming: str | None
) -> None:
    headers = bearer(member_token)
    if incoming is not None:
        headers["X-Request-ID"] = incoming
    response = await client.get("/api/members/x", headers=headers)
    rid = response.headers["x-request-id"]
    assert uuid.UUID(rid)
    assert header_values(response.json(), "x-request-id") == [rid]


async def test_request_id_on_problems(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/members/x", headers={"X-Request-ID": "r-1"})
    assert response.status_code == 401 and response.headers["x-request-id"] == "r-1"


async def test_traceparent_propagated_or_started(
    client: httpx.AsyncClient, member_token: str
) -> None:
    incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    response = await client.get(
        "/api/members/x",
        headers={**bearer(member_token), "traceparent": incoming, "tracestate": "k=v"},
    )
    record = response.json()
    # The trace continues through the gateway's own span: same trace id, the gateway's span
    # as the upstream's parent, and the client's tracestate carried along.
    (forwarded,) = header_values(record, "traceparent")
    version, trace_id, parent_id, flags = forwarded.split("-")
    assert (version, trace_id, flags) == ("00", "0af7651916cd43dd8448eb211c80319c", "01")
    assert parent_id != "b7ad6b7169203331" and len(parent_id) == 16
    assert header_values(record, "tracestate") == ["k=v"]
    response = await client.get(
        "/api/members/x",
        headers={**bearer(member_token), "traceparent": "garbage", "tracestate": "k=v"},
    )
    (started,) = header_values(response.json(), "traceparent")
    version, trace_id, parent_id, flags = started.split("-")
    assert (version, len(trace_id), len(parent_id)) == ("00", 32, 16)
    assert int(flags, 16) & 0x01  # sampled (0x02, "random trace id", may be set too)
    assert trace_id != "0af7651916cd43dd8448eb211c80319c"  # a garbage header starts a new trace
    assert header_values(response.json(), "tracestate") == []


async def test_head_and_options(client: httpx.AsyncClient, member_token: str) -> None:
    response = await client.head("/api/members/x", headers=bearer(member_token))
    assert response.status_code == 200 and response.content == b""
    response = await client.options("/api/members/x", headers=bearer(member_token))
    assert response.status_code == 200 and response.json()["method"] == "OPTIONS"
