"""Token issuance, JWKS, probes and settings guards."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm

from hearth_gateway.dev_accounts import DEV_ACCOUNTS, authenticate
from hearth_gateway.settings import GatewaySettings

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["type"].startswith("urn:hearth:problem:")
    return body


async def jwks_key(client: httpx.AsyncClient) -> tuple[str, Ed25519PublicKey]:
    keys = (await client.get("/.well-known/jwks.json")).json()["keys"]
    assert len(keys) == 1
    key = OKPAlgorithm.from_jwk(keys[0])
    assert isinstance(key, Ed25519PublicKey)
    return keys[0]["kid"], key


@pytest.mark.parametrize("username", sorted(DEV_ACCOUNTS))
async def test_token_for_each_dev_account(client: httpx.AsyncClient, username: str) -> None:
    account = DEV_ACCOUNTS[username]
    response = await client.post(
        "/auth/token", json={"username": username, "password": account.password}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    kid, key = await jwks_key(client)
    assert jwt.get_unverified_header(body["access_token"]) == {
        "alg": "EdDSA", "typ": "JWT", "kid": kid
    }  # fmt: skip
    claims = jwt.decode(
        body["access_token"], key, algorithms=["EdDSA"], audience="hearth-api", issuer="hearth"
    )
    assert claims["sub"] == str(account.subject)
    assert set(claims["roles"]) == account.roles
    assert claims["exp"] - claims["iat"] == 900
    assert claims["name"] == account.name


def test_dev_account_subjects_are_fixed() -> None:
    assert {a.username: (str(a.subject), set(a.roles)) for a in DEV_ACCOUNTS.values()} == {
        "operator": ("00000000-0000-7000-8000-000000000001", {"operator"}),
        "member": ("00000000-0000-7000-8000-000000000002", {"member"}),
        "admin": ("00000000-0000-7000-8000-000000000003", {"admin"}),
        "member2": ("00000000-0000-7000-8000-000000000004", {"member"}),
    }
    assert authenticate("admin", "hearth-admin", enabled=True) is DEV_ACCOUNTS["admin"]
    assert authenticate("admin", "hearth-admin", enabled=False) is None


@pytest.mark.parametrize(
    "credentials",
    [
        {"username": "member", "password": "wrong"},
        {"username": "member", "password": "hearth-admin"},
        {"username": "nobody", "password": "hearth-member"},
    ],
)
async def test_wrong_credentials_401(client: httpx.AsyncClient, credentials: dict) -> None:
    response = await client.post("/auth/token", json=credentials)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "payload", [{"username": "member"}, {"user": "x", "password": "y"}, [], {"username": ""}]
)
async def test_invalid_token_request_422(client: httpx.AsyncClient, payload: object) -> None:
    assert_problem(await client.post("/auth/token", json=payload), 422)


async def test_jwks_is_an_okp_key_with_thumbprint_kid(client: httpx.AsyncClient) -> None:
    (jwk,) = (await client.get("/.well-known/jwks.json")).json()["keys"]
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519" and jwk["alg"] == "EdDSA"
    assert "d" not in jwk  # never the private part
    # RFC 7638: the kid is the SHA-256 thumbprint of the required members, sorted, no spaces.
    required = {"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"]}
    canonical = json.dumps(required, sort_keys=True, separators=(",", ":")).encode()
    digest = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()
    assert jwk["kid"] == digest


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_readyz_names_the_down_upstream(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/readyz"), 503)
    assert body["down"] == ["events"]


async def test_readyz_ok_when_all_upstreams_answer(keys, echo, tmp_path) -> None:
    from asgi_lifespan import LifespanManager

    from hearth_gateway.main import create_app

    settings = GatewaySettings(
        environment="test",
        upstreams={"members": echo.url, "content": echo.url},
        database_url=f"sqlite:///{tmp_path}/gw.db",
        assertion_private_key_file=keys.assertion_file,
        token_private_key_file=keys.token_file,
    )
    app = create_app(settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            response = await http.get("/readyz")
    assert response.status_code == 200 and response.json() == {"status": "ready"}


def test_in_memory_keys_in_development() -> None:
    from hearth_gateway.main import create_app

    app = create_app(GatewaySettings(environment="development"))
    assert app.assertion_public_pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert app.assertion_public_pem != app.token_public_pem


def test_production_refuses_dev_accounts(keys) -> None:
    with pytest.raises(ValueError, match="dev accounts"):
        GatewaySettings(
            environment="production",
            database_url="postgresql://db/gateway",
            dev_accounts_enabled=True,
            assertion_private_key_file=keys.assertion_file,
            token_private_key_file=keys.token_file,
        )


def test_production_requires_key_files(keys) -> None:
    with pytest.raises(ValueError, match="private_key_file"):
        GatewaySettings(environment="production")
    with pytest.raises(ValueError, match="webhook_secret_keys_file"):
        GatewaySettings(
            environment="production",
            database_url="postgresql://db/gateway",
            dev_accounts_enabled=False,
            assertion_private_key_file=keys.assertion_file,
            token_private_key_file=keys.token_file,
        )


def test_production_defaults_disable_dev_accounts(keys, tmp_path) -> None:
    from hearth_gateway.webhook_keys import add_key

    add_key(tmp_path / "webhook-secrets.json")
    settings = GatewaySettings(
        environment="production",
        database_url="postgresql://db/gateway",
        assertion_private_key_file=keys.assertion_file,
        token_private_key_file=keys.token_file,
        webhook_secret_keys_file=tmp_path / "webhook-secrets.json",
    )
    assert settings.dev_accounts_enabled is False
    assert settings.webhook_allow_private_targets is False  # the SSRF guard is on
    development = GatewaySettings(environment="development")
    assert development.dev_accounts_enabled is True
    assert development.webhook_allow_private_targets is True
    assert GatewaySettings(environment="test").webhook_allow_private_targets is False


def test_upstreams_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "HEARTH_GATEWAY_UPSTREAMS", '{"members": "http://m:1/", "x-y": "http://x:2"}'
    )
    monkeypatch.setenv("HEARTH_GATEWAY_UPSTREAM_X_Y", "https://xy.internal:8443")
    monkeypatch.setenv("HEARTH_GATEWAY_MAX_BODY_BYTES", "2048")
    settings = GatewaySettings()
    assert settings.upstreams == {"members": "http://m:1", "x-y": "https://xy.internal:8443"}
    assert settings.max_body_bytes == 2048
    monkeypatch.delenv("HEARTH_GATEWAY_UPSTREAMS")
    monkeypatch.setenv("HEARTH_GATEWAY_UPSTREAM_MEMBERS", "http://members.svc:80")
    assert GatewaySettings().upstreams["members"] == "http://members.svc:80"
    assert GatewaySettings().upstreams["content"] == "http://127.0.0.1:8002"


@pytest.mark.parametrize(
    "bad", [{"Members": "http://x"}, {"members": "ftp://x"}, {"a": "http://x?q"}]
)
def test_bad_upstreams_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        GatewaySettings(upstreams=bad)


def test_subjects_are_uuids() -> None:
    assert all(isinstance(a.subject, uuid.UUID) for a in DEV_ACCOUNTS.values())


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/nothing", 404), ("GET", "/api", 404), ("GET", "/auth/token", 405)],
)
async def test_gateway_errors_are_problems(
    client: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    assert_problem(await client.request(method, path), status)


def test_generate_keys_feeds_settings(tmp_path, capsys, monkeypatch) -> None:
    from hearth_gateway.__main__ import generate_keys
    from hearth_gateway.main import create_app

    # A production app logs JSON to stdout from the root logger: not in this test session.
    monkeypatch.setenv("HEARTH_LOG_FORMAT", "text")

    generate_keys(tmp_path / "keys")
    env = dict(line.split("  #")[0].split("=", 1) for line in capsys.readouterr().out.splitlines())
    app = create_app(
        GatewaySettings(
            environment="production",
            database_url="postgresql://unused",
            assertion_private_key_file=env["HEARTH_GATEWAY_ASSERTION_PRIVATE_KEY_FILE"],
            token_private_key_file=env["HEARTH_GATEWAY_TOKEN_PRIVATE_KEY_FILE"],
            webhook_secret_keys_file=env["HEARTH_GATEWAY_WEBHOOK_SECRET_KEYS_FILE"],
        )
    )
    public = open(env["HEARTH_IDENTITY_PUBLIC_KEY_FILE"]).read()
    assert app.assertion_public_pem == public
    with pytest.raises(SystemExit):
        generate_keys(tmp_path / "keys")  # never overwrites
