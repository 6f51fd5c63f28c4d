"""End to end with the real members service (in-process, own database, real NATS), served over
HTTP so the gateway reaches it exactly as in production: password login through members'
accounts API, and users of two external issuers provisioned by members and joining the same
hybrid community."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn

from hearth_members.app import definition
from servicekit.testing.backends import Backends
from servicekit.testing.harness import running_service, test_settings


@pytest.fixture
async def members_url(
    backends: Backends, nats_url: str, subject_prefix: str, keys, server_thread
) -> AsyncIterator[str]:
    """members, trusting the gateway's assertion key, served by uvicorn in this event loop."""
    settings = test_settings(
        definition,
        database_url=backends.database_url("members"),
        nats_url=nats_url,
        subject_prefix=subject_prefix,
        identity_public_key=keys.assertion_public_pem,
    )
    async with running_service(definition, settings) as service:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(service.app, lifespan="off", log_level="warning",
                                http="httptools")  # fmt: skip
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{sock.getsockname()[1]}"
        finally:
            server.should_exit = True
            await task
            sock.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def admin_token(http: httpx.AsyncClient) -> str:
    # The development admin account (a dev-only fallback) plays the platform admin.
    response = await http.post(
        "/auth/token", json={"username": "admin", "password": "hearth-admin"}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def test_password_login_against_real_members(make_gateway, members_url: str) -> None:
    async with make_gateway(upstreams={"members": members_url}, accounts_url=None) as (_, http):
        admin = bearer(await admin_token(http))
        login = f"grace-{uuid.uuid4().hex[:6]}"
        created = await http.post(
            "/api/members/accounts",
            json={"login": login, "password": "a long passphrase", "name": "Grace",
                  "roles": ["operator"]},
            headers=admin,
        )  # fmt: skip
        assert created.status_code == 201, created.text
        account: dict[str, Any] = created.json()
        good = {"username": login, "password": "a long passphrase"}
        response = await http.post("/auth/token", json=good)
        assert response.status_code == 200, response.text
        tokens = response.json()
        me = await http.get("/api/members/communities", headers=bearer(tokens["access_token"]))
        assert me.status_code == 200, me.text
        bad = await http.post("/auth/token", json={"username": login, "password": "nope nope!"})
        assert bad.status_code == 401
        disabled = await http.patch(
            f"/api/members/accounts/{account['id']}", json={"status": "disabled"}, headers=admin
        )
        assert disabled.status_code == 200, disabled.text
        refused = await http.post("/auth/token", json=good)
        assert refused.status_code == 403 and refused.json()["type"].endswith("account-disabled")


async def test_users_of_two_issuers_join_the_same_hybrid_community(
    make_gateway, members_url: str, idps
) -> None:
    async with make_gateway(upstreams={"members": members_url}, accounts_url=None) as (_, http):
        admin = bearer(await admin_token(http))
        community = await http.post(
            "/api/members/communities",
            json={"name": f"Makers {uuid.uuid4().hex[:4]}", "kind": "hybrid"},
            headers=admin,
        )
        assert community.status_code == 201, community.text
        community_id = community.json()["id"]
        employee = idps.a.mint(f"emp-{uuid.uuid4().hex[:6]}", groups=["staff"])
        partner = idps.b.mint(f"partner-{uuid.uuid4().hex[:6]}")
        subjects = []
        for token in (employee, partner):
            joined = await http.post(
                f"/api/members/communities/{community_id}/members", headers=bearer(token)
            )
            assert joined.status_code == 201, joined.text
            subjects.append(joined.json()["user_id"])
        assert len(set(subjects)) == 2
        listed = await http.get(f"/api/members/communities/{community_id}/members", headers=admin)
        assert listed.status_code == 200, listed.text
        assert set(subjects) <= {m["user_id"] for m in listed.json()["items"]}
