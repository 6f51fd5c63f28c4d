"""The built-in issuer: password login through members' accounts API (a real HTTP stub of
contract 2, since members' accounts routes do not exist yet), refresh-token rotation with reuse
detection, logout, key rotation, and login throttling with lock-out."""

from __future__ import annotations

import uuid

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hearth_gateway.tokens import TokenIssuer, private_pem, public_jwk, public_pem

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["type"].startswith("urn:hearth:problem:")
    return body


@pytest.fixture
def account(accounts) -> dict:
    """A fresh active account in the accounts stub."""
    login = f"ada-{uuid.uuid4().hex[:6]}"
    record = {
        "login": login, "password": "correct horse battery", "subject": str(uuid.uuid4()),
        "name": "Ada", "roles": ["operator"], "status": "active",
    }  # fmt: skip
    accounts.accounts[login] = record
    return record


async def login(client: httpx.AsyncClient, account: dict, password: str | None = None):
    return await client.post(
        "/auth/token",
        json={"username": account["login"], "password": password or account["password"]},
    )


async def test_password_login_via_members_accounts(
    client: httpx.AsyncClient, account: dict, accounts, echo
) -> None:
    response = await login(client, account)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["refresh_token"].startswith("rt_") and body["refresh_expires_in"] > 0
    assert {"verify": account["login"]} in accounts.calls  # the stub saw a service assertion
    proxied = await client.get(
        "/api/members/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert proxied.status_code == 200
    principal = proxied.json()["principal"]
    assert principal["subject"] == account["subject"] and principal["roles"] == ["operator"]


async def test_wrong_password_and_unknown_login_401(client: httpx.AsyncClient, account) -> None:
    assert_problem(await login(client, account, "wrong"), 401)
    assert_problem(
        await client.post("/auth/token", json={"username": "nobody-x", "password": "p"}), 401
    )


async def test_disabled_account_403(client: httpx.AsyncClient, account, accounts) -> None:
    accounts.accounts[account["login"]]["status"] = "disabled"
    body = assert_problem(await login(client, account), 403)
    assert body["type"].endswith("account-disabled")


async def test_accounts_service_down_503(make_gateway, account, dead_url: str) -> None:
    async with make_gateway(accounts_url=dead_url) as (_, http):
        assert_problem(await login(http, account), 503)


async def test_refresh_rotates_and_reuse_revokes_the_family(
    client: httpx.AsyncClient, account: dict
) -> None:
    first = (await login(client, account)).json()
    second = await client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    second_body = second.json()
    assert second_body["refresh_token"] != first["refresh_token"]
    claims = jwt.decode(second_body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == account["subject"]
    # The old token is replayed (stolen): refused, and the whole family is revoked ...
    reused = await client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert_problem(reused, 401)
    # ... so even the legitimate holder's current token no longer works.
    after = await client.post("/auth/refresh", json={"refresh_token": second_body["refresh_token"]})
    assert_problem(after, 401)


async def test_logout_revokes_refresh(client: httpx.AsyncClient, account: dict) -> None:
    body = (await login(client, account)).json()
    out = await client.post("/auth/logout", json={"refresh_token": body["refresh_token"]})
    assert out.status_code == 204
    again = await client.post("/auth/refresh", json={"refresh_token": body["refresh_token"]})
    assert_problem(again, 401)
    # A second login is a new family and works.
    fresh = (await login(client, account)).json()
    ok = await client.post("/auth/refresh", json={"refresh_token": fresh["refresh_token"]})
    assert ok.status_code == 200


@pytest.mark.parametrize("token", ["rt_nonsense", "x" * 200])
async def test_unknown_refresh_token_401(client: httpx.AsyncClient, token: str) -> None:
    assert_problem(await client.post("/auth/refresh", json={"refresh_token": token}), 401)


async def test_dev_accounts_are_a_fallback_only_outside_production(
    make_gateway, account: dict
) -> None:
    async with make_gateway(dev_accounts_enabled=False) as (_, http):
        dev = await http.post(
            "/auth/token", json={"username": "member", "password": "hearth-member"}
        )
        assert_problem(dev, 401)  # "member" is then just an unknown login at members
        assert (await login(http, account)).status_code == 200


async def test_key_rotation_without_downtime(make_gateway, keys, tmp_path) -> None:
    """New active key signs; tokens of the previous key keep working until they expire."""
    old_issuer = TokenIssuer(keys.token_key, issuer="hearth", audience="hearth-api", ttl=300)
    old_token = old_issuer.issue(subject=uuid.uuid4(), roles=frozenset({"member"}), name="x")
    new_key = Ed25519PrivateKey.generate()
    (tmp_path / "new.pem").write_text(private_pem(new_key))
    (tmp_path / "old.pub.pem").write_text(public_pem(keys.token_key.public_key()))
    async with make_gateway(
        token_private_key_file=tmp_path / "new.pem",
        token_previous_key_files=[tmp_path / "old.pub.pem"],
    ) as (_, http):
        kids = [k["kid"] for k in (await http.get("/.well-known/jwks.json")).json()["keys"]]
        assert kids == [public_jwk(new_key.public_key())["kid"], old_issuer.kid]
        new = (
            await http.post("/auth/token", json={"username": "member", "password": "hearth-member"})
        ).json()["access_token"]
        assert jwt.get_unverified_header(new)["kid"] == kids[0]
        for token in (old_token, new):
            response = await http.get(
                "/api/members/x", headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 200, response.text
    # Once the previous key is dropped from the settings, its tokens are refused.
    async with make_gateway(token_private_key_file=tmp_path / "new.pem") as (_, http):
        response = await http.get(
            "/api/members/x", headers={"Authorization": f"Bearer {old_token}"}
        )
        assert_problem(response, 401)


async def test_login_lockout_with_back_off(make_gateway, account: dict) -> None:
    async with make_gateway(login_lockout_threshold=3, login_lockout_base_seconds=30) as (
        app,
        http,
    ):
        for _ in range(3):
            assert_problem(await login(http, account, "wrong"), 401)
        locked = assert_problem(await login(http, account), 429)  # even the right password
        assert locked["type"] == "urn:hearth:problem:rate-limited"
        assert 1 <= int((await login(http, account)).headers["retry-after"]) <= 30
        # The lock is per username + IP: the same login from another address is not locked.
        other = httpx.ASGITransport(app=app, client=("10.9.9.9", 4444))
        async with httpx.AsyncClient(transport=other, base_url="http://gw") as elsewhere:
            assert (await login(elsewhere, account)).status_code == 200


async def test_login_rate_limited_per_ip(make_gateway, account: dict) -> None:
    async with make_gateway(rate_limit_login_per_second=0.1, rate_limit_login_burst=2) as (_, http):
        assert (await login(http, account)).status_code == 200
        assert (await login(http, account)).status_code == 200
        response = await login(http, account)
        assert_problem(response, 429)
        assert int(response.headers["retry-after"]) >= 1
