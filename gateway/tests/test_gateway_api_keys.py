"""API keys for business systems: admin-managed, shown once, stored hashed, scoped."""

from __future__ import annotations

import hashlib
import sqlite3
import uuid

import httpx
import pytest

from hearth_gateway.authn import Authenticator
from servicekit.pagination import encode_cursor

PROBLEM = "application/problem+json"


async def dev_token(client: httpx.AsyncClient, username: str) -> str:
    response = await client.post(
        "/auth/token", json={"username": username, "password": f"hearth-{username}"}
    )
    return response.json()["access_token"]


@pytest.fixture
async def admin(client: httpx.AsyncClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {await dev_token(client, 'admin')}"}


async def create_key(client, admin, scopes: list[str], name: str = "crm") -> dict:
    response = await client.post("/auth/api-keys", json={"name": name, "scopes": scopes},
                                 headers=admin)  # fmt: skip
    assert response.status_code == 201, response.text
    return response.json()


async def test_admin_creates_lists_and_the_secret_is_shown_once(
    client: httpx.AsyncClient, admin, gateway_settings
) -> None:
    created = await create_key(client, admin, ["events:read", "metrics:conversions:write"])
    assert created["key"].startswith("hk_" + created["prefix"] + "_")
    listed = (await client.get("/auth/api-keys", headers=admin)).json()["items"]
    mine = next(k for k in listed if k["id"] == created["id"])  # the newest: on the first page
    assert "key" not in mine and mine["scopes"] == ["events:read", "metrics:conversions:write"]
    assert mine["revoked_at"] is None
    # Only the SHA-256 digest is stored, never the secret.
    db = gateway_settings.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(db) as conn:
        (stored,) = conn.execute(
            "SELECT secret_hash FROM api_keys WHERE prefix = ?", (created["prefix"],)
        ).fetchone()
        dump = "\n".join(conn.iterdump())
    assert stored == hashlib.sha256(created["key"].encode()).hexdigest()
    assert created["key"] not in dump


async def test_keys_are_listed_newest_first_a_page_at_a_time(make_gateway) -> None:
    async with make_gateway() as (_, http):  # its own database: exactly these keys
        headers = {"Authorization": f"Bearer {await dev_token(http, 'admin')}"}
        created = [
            (await create_key(http, headers, ["events:read"], f"k{n}"))["id"] for n in range(5)
        ]
        first = (await http.get("/auth/api-keys", params={"limit": 2}, headers=headers)).json()
        assert [k["id"] for k in first["items"]] == created[:-3:-1]
        # A key created between pages comes before the cursor: the walk neither repeats nor
        # skips anything (an offset would now return the second key again).
        newer = (await create_key(http, headers, ["events:read"], "late"))["id"]
        seen, cursor, pages = [k["id"] for k in first["items"]], first["next_cursor"], 1
        while cursor is not None:
            params = {"limit": 2, "cursor": cursor}
            page = (await http.get("/auth/api-keys", params=params, headers=headers)).json()
            assert 1 <= len(page["items"]) <= 2
            seen += [k["id"] for k in page["items"]]
            cursor, pages = page["next_cursor"], pages + 1
        assert seen == created[::-1] and pages == 3  # 2 + 2 + 1, the last without a cursor
        everything = (await http.get("/auth/api-keys", headers=headers)).json()
        assert [k["id"] for k in everything["items"]] == [newer, *created[::-1]]
        assert everything["next_cursor"] is None


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 201}, {"limit": "x"}, {"cursor": "%%%"}, {"cursor": "x" * 513},
     {"cursor": encode_cursor([5])}, {"cursor": encode_cursor(["not-a-uuid"])},
     {"cursor": encode_cursor([str(uuid.uuid4()), "extra"])}, {"cursor": encode_cursor({"a": 1})}],
)  # fmt: skip
async def test_bad_limits_and_cursors_are_422_problems(
    client: httpx.AsyncClient, admin, params
) -> None:
    response = await client.get("/auth/api-keys", params=params, headers=admin)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    if len(params.get("cursor", "")) in range(1, 513):  # decoded, and refused as not ours
        assert response.json()["type"] == "urn:hearth:problem:invalid-cursor"


@pytest.mark.parametrize("who", ["member", "operator", None])
async def test_only_platform_admins_manage_keys(client: httpx.AsyncClient, who) -> None:
    headers = {"Authorization": f"Bearer {await dev_token(client, who)}"} if who else {}
    expected = 403 if who else 401
    for method, path, body in [
        ("POST", "/auth/api-keys", {"name": "x", "scopes": ["events:read"]}),
        ("GET", "/auth/api-keys", None),
        ("DELETE", f"/auth/api-keys/{uuid.uuid4()}", None),
    ]:
        response = await client.request(method, path, json=body, headers=headers)
        assert response.status_code == expected, response.text
        assert response.headers["content-type"].startswith(PROBLEM)


async def test_an_api_key_cannot_manage_keys(client: httpx.AsyncClient, admin) -> None:
    created = await create_key(client, admin, ["events:read"])
    response = await client.get(
        "/auth/api-keys", headers={"Authorization": f"Bearer {created['key']}"}
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    "body", [{"name": "x", "scopes": []}, {"name": "", "scopes": ["a:b"]},
             {"name": "x", "scopes": ["NOT A SCOPE"]}, {"name": "x"}],
)  # fmt: skip
async def test_invalid_key_requests_422(client: httpx.AsyncClient, admin, body) -> None:
    assert (await client.post("/auth/api-keys", json=body, headers=admin)).status_code == 422


async def test_revoke_unknown_key_404(client: httpx.AsyncClient, admin) -> None:
    response = await client.delete(f"/auth/api-keys/{uuid.uuid4()}", headers=admin)
    assert response.status_code == 404


@pytest.mark.parametrize("style", ["bearer", "x-api-key"])
async def test_key_becomes_a_service_principal_with_scopes(
    client: httpx.AsyncClient, admin, echo, style: str
) -> None:
    created = await create_key(client, admin, ["events:read", "members:read"])
    headers = (
        {"Authorization": f"Bearer {created['key']}"}
        if style == "bearer"
        else {"X-API-Key": created["key"]}
    )
    response = await client.get("/api/members/communities", headers=headers)
    assert response.status_code == 200, response.text
    record = response.json()
    principal = record["principal"]
    assert principal["kind"] == "service" and principal["subject"] == created["id"]
    assert sorted(principal["scopes"]) == ["events:read", "members:read"]
    assert principal["roles"] == ["service"] and principal["name"] == "crm"
    forwarded = {k for k, _ in record["headers"]}
    assert "x-api-key" not in forwarded and "authorization" not in forwarded


async def test_missing_scope_403_and_unmapped_route_403(
    client: httpx.AsyncClient, admin, echo
) -> None:
    created = await create_key(client, admin, ["events:read"])
    headers = {"X-API-Key": created["key"]}
    before = len(echo.received)
    needs_scope = await client.get("/api/members/communities", headers=headers)
    assert needs_scope.status_code == 403
    assert needs_scope.json()["required_scope"] == "members:read"
    write = await client.post("/api/members/communities", json={}, headers=headers)
    assert write.status_code == 403  # no rule maps POST on members for API keys: refused
    assert len(echo.received) == before


async def test_revoked_key_401(client: httpx.AsyncClient, admin) -> None:
    created = await create_key(client, admin, ["members:read"])
    headers = {"X-API-Key": created["key"]}
    assert (await client.get("/api/members/x", headers=headers)).status_code == 200
    revoked = await client.delete(f"/auth/api-keys/{created['id']}", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    response = await client.get("/api/members/x", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith(PROBLEM)


@pytest.mark.parametrize(
    "key", ["hk_", "hk_abc_def", "hk_000000000000_wrongsecret", "hk_" + "x" * 500]
)
async def test_unknown_or_malformed_keys_401(client: httpx.AsyncClient, key: str) -> None:
    assert (await client.get("/api/members/x", headers={"X-API-Key": key})).status_code == 401


async def test_last_used_is_recorded_at_most_once_a_minute(
    client: httpx.AsyncClient, admin, gateway_settings, monkeypatch
) -> None:
    created = await create_key(client, admin, ["members:read"])
    writes: list[uuid.UUID] = []
    original = Authenticator._touch

    async def counting(self, key_id):  # counts writes made by the real method
        writes.append(key_id)
        await original(self, key_id)

    monkeypatch.setattr(Authenticator, "_touch", counting)
    for _ in range(5):
        response = await client.get("/api/members/x", headers={"X-API-Key": created["key"]})
        assert response.status_code == 200
    listed = (await client.get("/auth/api-keys", headers=admin)).json()["items"]
    mine = next(k for k in listed if k["id"] == created["id"])
    assert mine["last_used_at"] is not None
    assert writes.count(uuid.UUID(created["id"])) <= 1
